//! Hostile guests hurt only their own request.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wpaas_tests::pending::PendingGet;
use wpaas_tests::{client, eventually, example, UpServer};

/// Sends `path` to the hostile app and, while it misbehaves, a well-behaved
/// request on the same host; returns the hostile request's status and body.
fn misbehave(server: &UpServer, path: &str) -> (u16, String) {
    let hostile = PendingGet::send(server.addr, &server.addr.to_string(), path);
    hostile.wait_until_read();
    // The server has it; let it misbehave for a while (looping, trapping,
    // eating memory) before the well-behaved request arrives: the damage
    // done in that time is what the test is about, and no event marks it.
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
    hostile.answer()
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
fn handler_that_never_sets_a_response_answers_500() {
    // As `wasmtime serve` does: returning without `response-outparam::set`
    // is the application's error (500), not a malformed answer (502).
    let server = UpServer::start(&example("hostile"), &[]).unwrap();
    let response = client().get(server.url("/no-response")).send().unwrap();
    assert_eq!(response.status(), 500);
    let body = response.text().unwrap();
    // The visitor sees the error page; the cause is the operator's.
    assert!(body.starts_with("Application error\n"), "{body}");
    assert!(!body.contains("handler"), "{body}");
    let ok = client().get(server.url("/")).send().unwrap();
    assert_eq!(ok.status(), 200);
    let stderr = server.stop();
    assert!(
        stderr.contains("code=H13") && stderr.contains("status=500"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the handler returned without setting a response"),
        "{stderr}"
    );
}

#[test]
fn infinite_loop_times_out_with_504() {
    let server = hostile_server();
    let (status, body) = misbehave(&server, "/loop");
    assert_eq!(status, 504, "{body}");
    // The visitor sees the error page; the server's log says why.
    assert!(body.starts_with("Application error\n"), "{body}");
    let stderr = server.stop();
    assert!(stderr.contains("request timed out"), "{stderr}");
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

/// A tiny HTTP server on 127.0.0.1 standing in for a private service (the
/// control API, a database's admin page): answers `200 hi` and records
/// every connection and request head.
struct PrivateService {
    port: u16,
    connections: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl PrivateService {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (connections.clone(), heads.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
                );
            }
        });
        Self {
            port,
            connections,
            heads,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Asks the hostile app to GET `url`; the status and body it answers.
fn fetch(server: &UpServer, url: &str) -> (u16, String) {
    let response = client()
        .get(server.url(&format!("/fetch?url={url}")))
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn outbound_requests_to_loopback_are_denied() {
    let service = PrivateService::start();
    let server = UpServer::start(&example("hostile"), &[]).unwrap();
    let port = service.port;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let (status, body) = fetch(&server, &url);
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.starts_with("denied:"), "{url}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{url}: {body}");
    }
    // A connection that slipped through came before this one, and the
    // service takes connections one at a time, in order: once it has
    // logged this one's head, it had counted any earlier one.
    let mut sentinel = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sentinel
        .write_all(b"GET /sentinel HTTP/1.1\r\n\r\n")
        .unwrap();
    eventually(Duration::from_secs(10), || {
        let heads = service.heads.lock().unwrap();
        if heads.iter().any(|h| h.starts_with("GET /sentinel ")) {
            Ok(())
        } else {
            Err(format!("the sentinel is not served yet: {heads:?}"))
        }
    });
    assert_eq!(
        service.connections(),
        1,
        "the private service was reached (besides the sentinel)"
    );
    let stderr = server.stop();
    assert!(stderr.contains("outbound request denied"), "{stderr}");
}

#[test]
fn cloud_metadata_address_is_denied_without_connecting() {
    let server = UpServer::start(&example("hostile"), &[]).unwrap();
    // A connection attempt to a black-holed address would hang for the
    // connect timeout or fail with another code; the policy answers at once.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    ] {
        let started = Instant::now();
        let (status, body) = fetch(&server, url);
        assert_eq!(status, 502, "{url}: {body}");
        assert!(
            body.contains("denied: ") && body.contains("HttpRequestDenied"),
            "{url}: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{url} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn allow_private_network_lets_outbound_requests_through() {
    let service = PrivateService::start();
    let server = UpServer::start(&example("hostile"), &["--allow-private-network"]).unwrap();
    let port = service.port;
    let (status, body) = fetch(&server, &format!("http://127.0.0.1:{port}/hello"));
    assert_eq!((status, body.as_str()), (200, "fetched 200"));
    assert_eq!(service.connections(), 1);
    let head = service.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /hello http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
}
