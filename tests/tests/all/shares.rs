//! Fair shares: one app flooded with slow requests cannot take the
//! instances another app needs; per-instance caps on resources.

use std::path::Path;
use std::time::Duration;

use wpaas_tests::{client, eventually, example, Server, UpServer};

fn deploy_hostile(server: &Server, dir: &Path, app: &str) {
    std::fs::copy(example("hostile"), dir.join("hostile.wasm")).unwrap();
    let out = server.cli(dir, &["deploy", "-a", app]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` concurrent slow requests to `app`; returns (status, body) of each.
fn flood(
    server: &Server,
    app: &str,
    n: usize,
    ms: u64,
) -> Vec<std::thread::JoinHandle<(u16, String)>> {
    let router = server.router;
    (0..n)
        .map(|_| {
            let app = app.to_string();
            std::thread::spawn(move || {
                let response = client()
                    .get(format!("http://{router}/sleep?ms={ms}"))
                    .header("host", format!("{app}.localhost"))
                    .send()
                    .expect("router answers");
                (
                    response.status().as_u16(),
                    response.text().unwrap_or_default(),
                )
            })
        })
        .collect()
}

/// Waits until `app` refuses a request: the flood holds all it may.
fn wait_refused(server: &Server, app: &str) {
    eventually(Duration::from_secs(20), || {
        let response = server.get(app, "/sleep?ms=1");
        match response.status().as_u16() {
            503 => Ok(()),
            status => Err(format!("{app} still answers {status}")),
        }
    });
}

#[test]
fn a_flooded_app_gets_503s_while_another_keeps_answering() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    // A pool of 24 instances, 6 per app.
    let server = Server::start_with_env(
        home.path(),
        &[],
        &[("WPAAS_MAX_INSTANCES", "24"), ("WPAAS_APP_INSTANCES", "6")],
    )
    .unwrap();
    deploy_hostile(&server, src.path(), "hog");
    deploy_hostile(&server, src.path(), "victim");
    assert_eq!(server.get("victim", "/").status(), 200);

    let flooding = flood(&server, "hog", 30, 4000);
    wait_refused(&server, "hog");
    // While the hog holds its whole share, the victim answers every time.
    for _ in 0..20 {
        let response = server.get("victim", "/sleep?ms=1");
        assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    }
    let results: Vec<(u16, String)> = flooding.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert!(
        ok <= 6,
        "the hog ran {ok} at once with a share of 6: {results:?}"
    );
    assert!(!refused.is_empty(), "{results:?}");
    // The visitor is told only that the app could not answer; why is in
    // the server's log.
    assert!(
        refused[0].1.starts_with("Application error\n"),
        "{results:?}"
    );
    assert!(
        server.stderr().contains("share of the server's instances"),
        "{}",
        server.stderr()
    );
    assert_eq!(ok + refused.len(), results.len(), "{results:?}");
}

#[test]
fn a_full_pool_is_a_fast_503_not_a_hang() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    // Shares as large as the pool: what happens without fair shares.
    let server = Server::start_with_env(
        home.path(),
        &[],
        &[("WPAAS_MAX_INSTANCES", "8"), ("WPAAS_APP_INSTANCES", "8")],
    )
    .unwrap();
    deploy_hostile(&server, src.path(), "hog");
    deploy_hostile(&server, src.path(), "victim");
    // Each flooder sends slow requests back to back until told to stop, so
    // the pool stays full however late a loaded machine gets to the probes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let router = server.router;
    let flooding: Vec<_> = (0..12)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = client();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = client
                        .get(format!("http://{router}/sleep?ms=2000"))
                        .header("host", "hog.localhost")
                        .send()
                        .and_then(|r| r.text());
                }
            })
        })
        .collect();
    wait_refused(&server, "hog");
    let response = eventually(Duration::from_secs(20), || {
        let response = server.get("victim", "/");
        match response.status().as_u16() {
            503 => Ok(response),
            status => Err(format!("victim still answers {status}")),
        }
    });
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.text().unwrap();
    assert!(body.starts_with("Application error\n"), "{body}");
    assert!(
        server.stderr().contains("instance pool is full"),
        "{}",
        server.stderr()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flooding {
        t.join().unwrap();
    }
    assert_eq!(server.get("victim", "/").status(), 200);
}

#[test]
fn a_guest_hoarding_resources_is_stopped_at_the_table_cap() {
    let server = UpServer::start(&example("hostile"), &[]).unwrap();
    let response = client().get(server.url("/resources?n=100")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "holding 100 resources");
    // Far past the cap of 10,000 entries: a trap, not host memory.
    let response = client()
        .get(server.url("/resources?n=5000000"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(client().get(server.url("/")).send().unwrap().status(), 200);
}
