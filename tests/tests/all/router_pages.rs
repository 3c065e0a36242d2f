//! What a visitor sees when the router answers instead of the app, and
//! where the operator finds why: the page names only the request id; the
//! cause (a trap, a panic, a timeout) is in `wpaas logs` as the replica
//! (`app[web.1]: Error H13: request_id=… crashed: trap: …`), and the
//! router's line carries the same id.

use std::path::Path;
use std::time::Duration;

use wpaas_tests::{client, eventually, example, Server};

fn deploy_hostile(server: &Server, dir: &Path, app: &str) {
    std::fs::copy(example("hostile"), dir.join("hostile.wasm")).unwrap();
    server.ok(dir, &["deploy", "-a", app]);
}

/// Polls `wpaas logs -a APP` until a line contains every one of `wanted`.
fn wait_for_line(server: &Server, dir: &Path, app: &str, wanted: &[&str]) -> String {
    eventually(Duration::from_secs(10), || {
        let logs = server.ok(dir, &["logs", "-a", app, "-n", "1000"]);
        match logs.lines().find(|l| wanted.iter().all(|w| l.contains(w))) {
            Some(line) => Ok(line.to_string()),
            None => Err(format!("no line with {wanted:?} in the logs:\n{logs}")),
        }
    })
}

/// Words of the server's internals no public page may show.
const INTERNALS: [&str; 9] = [
    "wasm",
    "trap",
    "panic",
    "unreachable",
    "instance",
    "pool",
    "node",
    "replica",
    "stack",
];

/// The page's status, request id header and body, after checking it is a
/// router page that says nothing of the internals.
fn router_page(response: reqwest::blocking::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.text().unwrap();
    for word in INTERNALS {
        assert!(
            !body.to_lowercase().contains(word),
            "{status} page shows {word:?}: {body}"
        );
    }
    assert!(
        body.contains(&format!("Request id: {id}")),
        "{status} page without its request id: {body}"
    );
    (status, id, body)
}

#[test]
fn a_trap_or_panic_reaches_the_app_log_and_the_page_shows_only_the_request_id() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_hostile(&server, src.path(), "crashy");

    let (status, id, body) = router_page(server.get("crashy", "/trap"));
    assert_eq!(status, 500);
    assert!(body.starts_with("Application error\n"), "{body}");
    // The cause, as the replica that crashed, under the page's id.
    let line = wait_for_line(
        &server,
        src.path(),
        "crashy",
        &[
            "app[web.1]: Error H13:",
            &format!("request_id={id} "),
            "crashed: trap: wasm `unreachable` instruction executed",
        ],
    );
    assert!(line.contains("Error H13"), "{line}");
    // The router's line has the same id.
    wait_for_line(
        &server,
        src.path(),
        "crashy",
        &["app[router]:", "code=H13", &format!("request_id={id} ")],
    );

    // A panic: the guest's own message, then the trap it ends in.
    let (status, id, _) = router_page(server.get("crashy", "/panic"));
    assert_eq!(status, 500);
    wait_for_line(
        &server,
        src.path(),
        "crashy",
        &["app[web.1]:", "deliberate panic"],
    );
    wait_for_line(
        &server,
        src.path(),
        "crashy",
        &["app[web.1]:", &format!("request_id={id} "), "trap:"],
    );
    // And the server's own log has the cause under the id too.
    assert!(server.stderr().contains(&id), "{}", server.stderr());
}

#[test]
fn every_page_the_router_writes_hides_the_cause() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_hostile(&server, src.path(), "pages");
    let logs = |wanted: &[&str]| wait_for_line(&server, src.path(), "pages", wanted);

    // Crashes, a stack overflow, a handler that never answers.
    for path in ["/trap", "/panic", "/stack", "/deep", "/no-response"] {
        let (status, id, body) = router_page(server.get("pages", path));
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.starts_with("Application error\n"), "{path}: {body}");
        logs(&["app[web.1]: Error H13:", &format!("request_id={id} ")]);
    }
    logs(&[
        "app[web.1]: Error H13:",
        "the handler returned without setting a response",
    ]);
    logs(&["app[web.1]: Error H13:", "crashed: trap: stack overflow"]);

    // A request past its time limit: H12, 504; the log says which limit.
    server.ok(
        src.path(),
        &["ps:limits", "web", "--timeout", "1s", "-a", "pages"],
    );
    server.ok(src.path(), &["ps:restart", "web", "-a", "pages"]);
    let (status, id, _) = router_page(server.get("pages", "/loop"));
    assert_eq!(status, 504);
    logs(&[
        "app[web.1]: Error H12:",
        &format!("request_id={id} "),
        "timed out after 1s",
    ]);

    // No web process: H14, 503.
    server.ok(src.path(), &["ps:scale", "web=0", "-a", "pages"]);
    let (status, id, body) = router_page(server.get("pages", "/"));
    assert_eq!(status, 503);
    assert!(body.starts_with("Application error\n"), "{body}");
    logs(&["app[router]:", "code=H14", &format!("request_id={id} ")]);

    // No app at that host: 404.
    let (status, _, body) = router_page(server.get("nothere", "/"));
    assert_eq!(status, 404);
    assert!(body.starts_with("No such app\n"), "{body}");
}

#[test]
fn a_request_that_waits_out_its_time_in_the_queue_is_h19_not_h11() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_hostile(&server, src.path(), "queued");
    server.ok(
        src.path(),
        &[
            "ps:limits",
            "web",
            "--timeout",
            "1s",
            "--concurrency",
            "1",
            "-a",
            "queued",
        ],
    );
    server.ok(src.path(), &["ps:restart", "web", "-a", "queued"]);
    // One request holds the only slot until its time limit; the two behind
    // it queue, and at least the last waits out its own limit there.
    let router = server.router;
    let sent: Vec<_> = (0..3)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(100 * i));
            std::thread::spawn(move || {
                let response = client()
                    .get(format!("http://{router}/sleep?ms=5000"))
                    .header("host", "queued.localhost")
                    .send()
                    .unwrap();
                let retry = response.headers().get("retry-after").cloned();
                (response.status().as_u16(), retry)
            })
        })
        .collect();
    let answers: Vec<_> = sent.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers[0].0, 504, "{answers:?}");
    assert_eq!(answers[2].0, 503, "{answers:?}");
    assert!(
        answers[2].1.is_some(),
        "a 503 says when to retry: {answers:?}"
    );
    let line = wait_for_line(
        &server,
        src.path(),
        "queued",
        &["app[router]:", "status=503", "code=H19"],
    );
    assert!(
        line.contains("desc=\"Backend connection timeout\""),
        "{line}"
    );
    let logs = server.ok(src.path(), &["logs", "-a", "queued", "-n", "1000"]);
    assert!(!logs.contains("code=H11"), "no queue was full:\n{logs}");
}

#[test]
fn a_workers_trap_reaches_the_app_log() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let dir = src.path();
    // A WASI command that traps as soon as it starts.
    let module = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    )
    .unwrap();
    std::fs::write(dir.join("trap.wasm"), module).unwrap();
    std::fs::write(dir.join("Procfile"), "worker: trap.wasm\n").unwrap();
    let server = Server::start(home.path()).unwrap();
    server.ok(dir, &["deploy", "-a", "jobs"]);
    server.ok(dir, &["ps:scale", "worker=1", "-a", "jobs"]);
    wait_for_line(
        &server,
        dir,
        "jobs",
        &[
            "app[worker.1]: Process crashed:",
            "trap: wasm `unreachable` instruction executed",
        ],
    );
}
