//! `maintenance`, `maintenance:on`, `maintenance:off`: the router answers
//! every request with a 503 maintenance page and `Retry-After` while the
//! app keeps its formation; the mode is in the app's record, so it
//! survives a restart of the server.

use std::path::Path;
use std::time::Duration;

use wpaas_tests::golden::Transcript;
use wpaas_tests::{eventually, example, replicas, text, Server};

fn deploy_hello(server: &Server, dir: &Path, app: &str) {
    std::fs::copy(example("hello"), dir.join("hello.wasm")).unwrap();
    server.ok(dir, &["deploy", "-a", app]);
}

/// The status, `Retry-After` and body of `GET /` on `app`.
fn visit(server: &Server, app: &str) -> (u16, Option<String>, String) {
    let response = server.get(app, "/");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, response.text().unwrap())
}

#[test]
fn maintenance_answers_503_keeps_the_formation_and_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let dir = src.path();
    let server = Server::start(home.path()).unwrap();
    deploy_hello(&server, dir, "shop");
    server.ok(dir, &["ps:scale", "web=2", "-a", "shop"]);
    assert_eq!(visit(&server, "shop").0, 200);

    let mut t = Transcript::new("maintenance");
    t.redact_server(&server);
    // `Deploy <short digest>`: the digest changes with the example's code.
    let release = server.app_info("shop").release.unwrap();
    t.redact(release.description, "Deploy [SLUG]");
    t.ok(&server, dir, &["maintenance", "-a", "shop"]);
    t.ok(&server, dir, &["maintenance:on", "-a", "shop"]);
    t.ok(&server, dir, &["maintenance", "-a", "shop"]);
    t.ok(&server, dir, &["maintenance", "-a", "shop", "--json"]);
    t.ok(&server, dir, &["apps:info", "-a", "shop"]);

    let (status, retry, body) = visit(&server, "shop");
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("60"));
    assert!(body.starts_with("Offline for maintenance\n"), "{body}");
    // The formation is kept: both replicas still run.
    assert_eq!(replicas(&server.ps("shop"), "web").len(), 2);
    assert!(server.app_info("shop").app.maintenance);
    // The router's line says H80, as Heroku's.
    eventually(Duration::from_secs(10), || {
        let logs = server.ok(dir, &["logs", "-a", "shop", "-n", "100"]);
        let seen = logs.contains("app[api]: Maintenance mode on")
            && logs.lines().any(|l| {
                l.contains("code=H80 desc=\"Maintenance mode\"") && l.contains("status=503")
            });
        if seen {
            Ok(())
        } else {
            Err(format!("no H80 line:\n{logs}"))
        }
    });

    // Kept in the app's record: a restarted server still answers for it.
    server.kill();
    let server = Server::start(home.path()).unwrap();
    t.redact_server(&server);
    t.note("the server is restarted");
    t.ok(&server, dir, &["maintenance", "-a", "shop"]);
    assert_eq!(visit(&server, "shop").0, 503);

    t.ok(&server, dir, &["maintenance:off", "-a", "shop"]);
    t.ok(&server, dir, &["maintenance:off", "-a", "shop", "--json"]);
    t.ok(&server, dir, &["maintenance", "-a", "shop"]);
    t.check();
    let (status, _, body) = visit(&server, "shop");
    assert_eq!(status, 200, "{body}");
    assert_eq!(replicas(&server.ps("shop"), "web").len(), 2);

    // An app that does not exist is an error, not a silent no-op.
    let out = server.cli(dir, &["maintenance:on", "-a", "nothere"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no such app"), "{}", text(&out));
}
