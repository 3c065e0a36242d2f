//! Hostile guests hurt only their own request.

use std::time::{Duration, Instant};

use wpaas_tests::{client, example, UpServer};

/// Sends `path` to the hostile app and, while it misbehaves, a well-behaved
/// request on the same host; returns the hostile request's status and body.
fn misbehave(server: &UpServer, path: &str) -> (u16, String) {
    let url = server.url(path);
    let hostile = std::thread::spawn(move || {
        let response = client().get(url).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    });
    // Give the hostile request time to start doing damage.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let ok = client().get(server.url("/")).send().unwrap();
    assert_eq!(ok.status(), 200, "well-behaved request during {path}");
    assert_eq!(ok.text().unwrap(), "ok");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the well-behaved request waited {:?} behind {path}",
        started.elapsed()
    );
    hostile.join().unwrap()
}

fn hostile_server() -> UpServer {
    UpServer::start(&example("hostile"), &["--timeout", "3s", "--memory", "64M"]).unwrap()
}

#[test]
fn trap_panic_and_stack_overflow_answer_500() {
    let server = hostile_server();
    // `/stack` overflows Rust's shadow stack in linear memory (an
    // out-of-bounds trap); `/deep` overflows the wasm call stack itself.
    for path in ["/trap", "/panic", "/stack", "/deep"] {
        let (status, body) = misbehave(&server, path);
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.contains("Application error"), "{path}: {body}");
    }
    let stderr = server.stop();
    assert!(stderr.contains("stack overflow"), "{stderr}");
}

#[test]
fn infinite_loop_times_out_with_504() {
    let server = hostile_server();
    let (status, body) = misbehave(&server, "/loop");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("timed out"), "{body}");
}

#[test]
fn memory_bomb_is_stopped_at_the_limit() {
    let server = hostile_server();
    let (status, body) = misbehave(&server, "/memory");
    assert_eq!(status, 500, "{body}");
    // The instance is gone; the app still serves.
    let again = client().get(server.url("/")).send().unwrap();
    assert_eq!(again.status(), 200);
}

#[test]
fn handler_errors_become_500_with_the_message() {
    let server = hostile_server();
    let response = client().get(server.url("/error")).send().unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.text().unwrap().contains("deliberate failure"));
}
