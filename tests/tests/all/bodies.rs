//! Request bodies of wasi:http components: the same size limit and
//! body-read timeout as WAGI (see wagi.rs for the WAGI side).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wpaas_tests::{client, example, UpServer};

/// Sends a request head and `body`, then keeps the connection open and
/// silent for up to `pause`; returns what the server sent, and whether it
/// closed the connection (rather than `pause` running out).
fn stalled_request(server: &UpServer, head: &str, body: &[u8], pause: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(pause)).unwrap();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    let closed = stream.read_to_end(&mut answer).is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[test]
fn a_component_is_not_run_for_a_declared_body_over_the_limit() {
    let server = UpServer::start(&example("raw-echo"), &["--max-body", "1M"]).unwrap();
    let response = client()
        .post(server.url("/"))
        .body(vec![1u8; 1 << 20])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().unwrap().len(), 1 << 20);
    let (answer, _) = stalled_request(
        &server,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000",
        b"",
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn a_component_waiting_on_a_stalled_body_frees_its_slot() {
    let server = UpServer::start(
        &example("raw-echo"),
        &[
            "--body-timeout",
            "300ms",
            "--concurrency",
            "1",
            "--queue",
            "0",
        ],
    )
    .unwrap();
    // raw-echo answers 200 before it reads; the stall then cuts the
    // response short (no complete chunked body) and ends the instance.
    let (answer, closed) = stalled_request(
        &server,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000",
        &[b'x'; 1000],
        Duration::from_secs(20),
    );
    assert!(closed, "the connection was left open: {answer}");
    assert!(!answer.ends_with("0\r\n\r\n"), "{answer}");
    // The only slot is free again.
    let response = client().get(server.url("/?bytes=3")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "xxx");
}
