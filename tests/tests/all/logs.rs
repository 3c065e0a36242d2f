//! Logs: one stream per app from guests, the router, builds and the API;
//! `wpaas logs` (filters, --json, --tail across deploys); kept over a
//! restart; bounded under a guest that prints without pause.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wpaas_api::logs::LogLine;
use wpaas_tests::{eventually, example, Server};

/// Deploys the hostile example as `app`.
fn deploy_hostile(server: &Server, dir: &Path, app: &str) {
    std::fs::copy(example("hostile"), dir.join("hostile.wasm")).unwrap();
    server.ok(dir, &["deploy", "-a", app]);
}

/// Polls `wpaas logs ARGS` until a line contains every one of `wanted`;
/// that line.
fn wait_for_line(server: &Server, dir: &Path, args: &[&str], wanted: &[&str]) -> String {
    eventually(Duration::from_secs(10), || {
        let logs = server.ok(dir, args);
        match logs.lines().find(|l| wanted.iter().all(|w| l.contains(w))) {
            Some(line) => Ok(line.to_string()),
            None => Err(format!(
                "no line with {wanted:?} in `wpaas {args:?}`:\n{logs}"
            )),
        }
    })
}

/// `TIME app[PROCESS]: MESSAGE` with an RFC 3339 time to the microsecond.
fn assert_line_shape(line: &str) {
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(time.len(), "2026-01-01T00:00:00.000000Z".len(), "{line}");
    assert!(time.ends_with('Z') && time.contains('T'), "{line}");
    assert!(rest.starts_with("app[") && rest.contains("]: "), "{line}");
}

#[test]
fn guest_output_and_router_lines_with_status_and_error_codes() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_hostile(&server, src.path(), "chatty");
    server.ok(src.path(), &["ps:scale", "web=2", "-a", "chatty"]);
    let logs = ["logs", "-a", "chatty", "-n", "1000"];

    // Prints, attributed to the replica that served the request.
    let response = server.get("chatty", "/print?text=marker-one&n=2");
    assert_eq!(response.status(), 200);
    let body = response.text().unwrap();
    let dyno = body.rsplit(' ').next().unwrap().to_string();
    assert!(dyno.starts_with("web."), "{body}");
    let tag = format!("app[{dyno}]:");
    let line = wait_for_line(&server, src.path(), &logs, &[&tag, "marker-one 2"]);
    assert_line_shape(&line);
    wait_for_line(&server, src.path(), &logs, &[&tag, "marker-one on stderr"]);

    // One router line per request, with the status, replica and size.
    let router = wait_for_line(
        &server,
        src.path(),
        &logs,
        &["app[router]:", "path=\"/print?text=marker-one&n=2\""],
    );
    assert_line_shape(&router);
    for part in [
        "at=info method=GET",
        "host=chatty.localhost",
        "request_id=",
        "fwd=\"127.0.0.1\"",
        &format!("dyno={dyno} connect="),
        &format!("status=200 bytes={}", body.len()),
    ] {
        assert!(router.contains(part), "{part:?} missing: {router}");
    }
    let ids = server.get("chatty", "/");
    let id = ids.headers()["x-request-id"].to_str().unwrap().to_string();
    wait_for_line(
        &server,
        src.path(),
        &logs,
        &[&format!("request_id={id} "), "status=200", "path=\"/\""],
    );

    // A trap: H13, 500.
    assert_eq!(server.get("chatty", "/trap").status(), 500);
    wait_for_line(
        &server,
        src.path(),
        &logs,
        &[
            "at=error code=H13 desc=\"Connection closed without response\"",
            "path=\"/trap\"",
            "status=500",
        ],
    );

    // A request past the time limit: H12, 504.
    server.ok(
        src.path(),
        &["ps:limits", "web", "--timeout", "1s", "-a", "chatty"],
    );
    server.ok(src.path(), &["ps:restart", "web", "-a", "chatty"]);
    assert_eq!(server.get("chatty", "/sleep?ms=3000").status(), 504);
    wait_for_line(
        &server,
        src.path(),
        &logs,
        &[
            "at=error code=H12 desc=\"Request timeout\"",
            "path=\"/sleep?ms=3000\"",
            "status=504",
        ],
    );

    // No web processes: H14, 503.
    server.ok(src.path(), &["ps:scale", "web=0", "-a", "chatty"]);
    assert_eq!(server.get("chatty", "/").status(), 503);
    wait_for_line(
        &server,
        src.path(),
        &logs,
        &[
            "at=error code=H14 desc=\"No web processes running\"",
            "dyno= ",
            "status=503",
        ],
    );

    // The API's own lines.
    for wanted in [
        "app[api]: Release v1 created: Deploy ",
        "app[api]: Scaled web to 2",
        "app[api]: Restarted web processes",
        "app[api]: Scaled web to 0",
    ] {
        wait_for_line(&server, src.path(), &logs, &[wanted]);
    }
    wait_for_line(&server, src.path(), &logs, &["app[build]: -----> "]);

    // Filters: by replica, by type, by source; -n; --json.
    let only = server.ok(
        src.path(),
        &["logs", "-a", "chatty", "--ps", &dyno, "-n", "1000"],
    );
    assert!(only.contains("marker-one 1"), "{only}");
    assert!(only.lines().all(|l| l.contains(&tag)), "{only}");
    let web = server.ok(
        src.path(),
        &["logs", "-a", "chatty", "--ps", "web", "-n", "1000"],
    );
    assert!(web.lines().all(|l| l.contains("app[web.")), "{web}");
    let routed = server.ok(
        src.path(),
        &["logs", "-a", "chatty", "--source", "router", "-n", "1000"],
    );
    assert!(routed.lines().all(|l| l.contains("app[router]: at=")));
    assert_eq!(routed.lines().count(), 5, "{routed}");
    let last = server.ok(src.path(), &["logs", "-a", "chatty", "-n", "2"]);
    assert_eq!(last.lines().count(), 2, "{last}");
    let json = server.ok(
        src.path(),
        &[
            "logs", "-a", "chatty", "--json", "--source", "app", "-n", "1000",
        ],
    );
    let entries: Vec<LogLine> = json
        .lines()
        .map(|l| wpaas_tests::parse(l.as_bytes()))
        .collect();
    assert!(entries
        .iter()
        .any(|e| e.message == "marker-one 1" && e.process == dyno));
    assert!(entries.iter().all(|e| e.source == "app"), "{entries:?}");

    // Not a terminal: no colour codes.
    assert!(!server.ok(src.path(), &logs).contains('\x1b'));
    let out = server.cli(src.path(), &["logs", "-a", "nope"]);
    assert!(!out.status.success());
}

/// The number in `KEY=NNNms` in a router line.
fn millis_field(line: &str, key: &str) -> u64 {
    let start = line.find(&format!(" {key}=")).expect(key) + key.len() + 2;
    let rest = &line[start..];
    rest[..rest.find("ms").expect("ms")]
        .parse()
        .expect("a number")
}

#[test]
fn queueing_is_connect_time_and_a_client_that_leaves_is_h27() {
    use std::io::Write;
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_hostile(&server, src.path(), "queue");
    let logs = ["logs", "-a", "queue", "-n", "1000", "--source", "router"];
    // One slot: a second request waits for the first.
    server.ok(
        src.path(),
        &["ps:limits", "web", "--concurrency", "1", "-a", "queue"],
    );
    server.ok(src.path(), &["ps:restart", "web", "-a", "queue"]);
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| server.get("queue", "/sleep?ms=1000&first").status());
        wait_in_flight(&server, "queue", 1);
        assert_eq!(server.get("queue", "/sleep?ms=10&second").status(), 200);
        first.join().unwrap()
    });
    assert_eq!(first, 200);
    let waited = wait_for_line(&server, src.path(), &logs, &["&second\"", "status=200"]);
    let ran = wait_for_line(&server, src.path(), &logs, &["&first\"", "status=200"]);
    assert!(millis_field(&waited, "connect") >= 300, "{waited}");
    assert!(millis_field(&waited, "service") >= 300, "{waited}");
    assert!(millis_field(&ran, "connect") < 300, "{ran}");
    assert!(millis_field(&ran, "service") >= 1000, "{ran}");

    // A client that hangs up before the answer: H27, 499.
    let mut raw = std::net::TcpStream::connect(server.router).unwrap();
    raw.write_all(b"GET /sleep?ms=800&leaving HTTP/1.1\r\nHost: queue.localhost\r\n\r\n")
        .unwrap();
    wait_in_flight(&server, "queue", 1);
    drop(raw);
    let left = wait_for_line(
        &server,
        src.path(),
        &logs,
        &[
            "at=error code=H27 desc=\"Client Request Interrupted\"",
            "&leaving\"",
            "status=499",
        ],
    );
    assert!(millis_field(&left, "service") < 800, "{left}");
    // The app still answers.
    assert_eq!(server.get("queue", "/").status(), 200);
}

/// Reads `wpaas logs --tail`'s stdout into a shared buffer.
fn spawn_tail(server: &Server, dir: &Path, app: &str) -> (std::process::Child, Arc<Mutex<String>>) {
    let mut child = server
        .command(dir, &["logs", "-a", app, "--tail", "-n", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut seen = sink.lock().unwrap();
            seen.push_str(&line);
            seen.push('\n');
        }
    });
    (child, seen)
}

/// Waits until `app` has `n` requests in flight.
fn wait_in_flight(server: &Server, app: &str, n: u64) {
    eventually(Duration::from_secs(10), || match server.in_flight(app) {
        seen if seen == n => Ok(()),
        seen => Err(format!("{seen} requests in flight on {app}, not {n}")),
    });
}

fn wait_in(seen: &Mutex<String>, wanted: &str) {
    eventually(Duration::from_secs(20), || {
        let seen = seen.lock().unwrap();
        if seen.contains(wanted) {
            Ok(())
        } else {
            Err(format!(
                "`logs --tail` never showed {wanted:?}; it showed:\n{seen}"
            ))
        }
    });
}

#[test]
fn tail_follows_builds_releases_and_output_across_deploys() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    server.ok(src.path(), &["apps:create", "tailed"]);
    let (mut tail, seen) = spawn_tail(&server, src.path(), "tailed");
    // Connected: it has shown the past.
    wait_in(&seen, "app[api]: App created");

    deploy_hostile(&server, src.path(), "tailed");
    wait_in(&seen, "app[build]: -----> ");
    wait_in(&seen, "app[build]: -----> Health check: GET /");
    wait_in(&seen, "app[api]: Release v1 created: Deploy ");
    // Read to the end: a client that hangs up before the body is logged
    // H27, not the at=info line this test waits for.
    let response = server.get("tailed", "/print?text=first");
    assert_eq!(response.status(), 200);
    response.text().unwrap();
    wait_in(&seen, "app[web.1]: first 1");
    wait_in(
        &seen,
        "app[router]: at=info method=GET path=\"/print?text=first\"",
    );

    // A second release, same connection.
    server.ok(src.path(), &["config:set", "FOO=bar", "-a", "tailed"]);
    wait_in(&seen, "app[api]: Release v2 created: Set FOO config vars");
    // Read to the end: a client that hangs up before the body is logged
    // H27, not the at=info line this test waits for.
    let response = server.get("tailed", "/print?text=second");
    assert_eq!(response.status(), 200);
    response.text().unwrap();
    wait_in(&seen, "app[web.1]: second 1");
    deploy_hostile(&server, src.path(), "tailed");
    wait_in(&seen, "app[api]: Release v3 created: Deploy ");
    assert!(
        tail.try_wait().unwrap().is_none(),
        "the tail ended by itself"
    );
    let _ = tail.kill();
    let _ = tail.wait();
    let shown = seen.lock().unwrap().clone();
    for line in shown.lines() {
        assert_line_shape(line);
    }
}

#[test]
fn logs_survive_a_server_restart() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_hostile(&server, src.path(), "kept");
    assert_eq!(server.get("kept", "/print?text=before-crash").status(), 200);
    let logs = ["logs", "-a", "kept", "-n", "1000"];
    wait_for_line(&server, src.path(), &logs, &["app[web.1]: before-crash 1"]);
    wait_for_line(
        &server,
        src.path(),
        &logs,
        &["app[router]:", "before-crash"],
    );
    // The writer flushes as soon as it is idle: wait until the file holds
    // every line `wpaas logs` shows.
    let before = eventually(Duration::from_secs(10), || {
        let shown = server.ok(src.path(), &logs);
        let on_disk = server.app_log("kept");
        if shown.lines().count() == on_disk.lines().count() {
            Ok(shown)
        } else {
            Err(format!("shown:\n{shown}\non disk:\n{on_disk}"))
        }
    });
    server.kill();

    let server = Server::start(home.path()).unwrap();
    let after = server.ok(src.path(), &logs);
    assert!(
        after.starts_with(before.trim_end()),
        "{before}\n---\n{after}"
    );
    assert!(after.contains("app[web.1]: before-crash 1"));
    assert!(after.contains("app[api]: Release v1 created"));
    // And it goes on after them.
    assert_eq!(
        server.get("kept", "/print?text=after-restart").status(),
        200
    );
    wait_for_line(&server, src.path(), &logs, &["app[web.1]: after-restart 1"]);
}

/// The server's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Median of `n` sequential GETs of `/` on `app`.
fn median_latency(server: &Server, app: &str, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(server.get(app, "/").status(), 200);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

#[test]
fn a_guest_printing_without_pause_stays_within_the_bound() {
    const KEEP: usize = 1000;
    let home = tempfile::tempdir().unwrap();
    let noisy_src = tempfile::tempdir().unwrap();
    let quiet_src = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), &["--log-lines", &KEEP.to_string()]).unwrap();
    deploy_hostile(&server, noisy_src.path(), "noisy");
    std::fs::copy(example("hello"), quiet_src.path().join("hello.wasm")).unwrap();
    server.ok(quiet_src.path(), &["deploy", "-a", "quiet"]);

    let text = "x".repeat(100);
    let spam = format!("/print?n=50000&text={text}");
    // Warm up both (instance pools, first-use allocations).
    assert_eq!(server.get("noisy", &spam).status(), 200);
    let quiet_alone = median_latency(&server, "quiet", 50);
    let rss_before = rss_kib(server.pid());

    // 20 requests × 50,000 lines × ~110 bytes ≈ 110 MB of output, while
    // another app is being served.
    let started = Instant::now();
    let (quiet_during, ()) = std::thread::scope(|scope| {
        let noisy = scope.spawn(|| {
            for _ in 0..20 {
                assert_eq!(server.get("noisy", &spam).status(), 200);
            }
        });
        let mut during = Vec::new();
        while !noisy.is_finished() {
            during.push(median_latency(&server, "quiet", 9));
        }
        during.sort();
        (during[during.len() / 2], noisy.join().unwrap())
    });
    let spam_time = started.elapsed();
    let rss_after = rss_kib(server.pid());
    eprintln!(
        "1,000,000 lines printed in {spam_time:.1?}; quiet app median latency {quiet_alone:.2?} alone, \
         {quiet_during:.2?} meanwhile; server RSS {} MiB → {} MiB",
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(
        quiet_during < quiet_alone * 10 + Duration::from_millis(20),
        "the quiet app slowed from {quiet_alone:?} to {quiet_during:?}"
    );

    // The buffer and the file hold at most KEEP (file: 2 × KEEP) lines.
    let kept = server.ok(noisy_src.path(), &["logs", "-a", "noisy", "-n", "1000000"]);
    assert_eq!(kept.lines().count(), KEEP, "lines kept");
    assert!(kept.contains("app[router]:"), "the last request's line");
    // While the writer drains (until the file stops growing between two
    // looks), the file stays in bounds.
    let mut before = None;
    eventually(Duration::from_secs(10), || {
        let on_disk = server.app_log("noisy").lines().count();
        assert!(on_disk <= 2 * KEEP, "{on_disk} lines on disk");
        match before.replace(on_disk) {
            Some(n) if n == on_disk => Ok(()),
            _ => Err(format!("the file still grows: {on_disk} lines")),
        }
    });
}
