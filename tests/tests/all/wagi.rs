//! WASI preview-1 modules served CGI-style (WAGI).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wpaas_tests::{client, example, UpServer};

#[test]
fn wagi_module_gets_cgi_variables_and_env() {
    let server = UpServer::start(&example("wagi-hello"), &["-e", "GREETING=hej"]).unwrap();
    let response = client().get(server.url("/greet?who=you")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let body = response.text().unwrap();
    assert!(body.contains("method=GET"), "{body}");
    assert!(body.contains("path=/greet"), "{body}");
    assert!(body.contains("query=who=you"), "{body}");
    assert!(body.contains("GREETING=hej"), "{body}");
}

#[test]
fn wagi_module_reads_body_from_stdin_and_sets_status() {
    let server = UpServer::start(&example("wagi-hello"), &[]).unwrap();
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let response = client()
        .post(server.url("/upload"))
        .body(sent.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.bytes().unwrap() == sent);
}

/// What the WAGI guest saw as its environment (`GET /env` prints it).
fn guest_env(server: &UpServer, headers: &[(&str, &str)]) -> String {
    let mut request = client().get(server.url("/env"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), 200);
    response.text().unwrap()
}

#[test]
fn spoofed_forwarding_and_proxy_headers_never_reach_the_guest() {
    let server = UpServer::start(&example("wagi-hello"), &[]).unwrap();
    let env = guest_env(
        &server,
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("X_Forwarded_For", "6.6.6.6"),
            ("Proxy", "http://evil.example:8080"),
            ("X_Custom", "underscored"),
            ("X-Custom-Ok", "dashed"),
        ],
    );
    // The router's entry is last, and the client's look-alike nowhere.
    assert!(
        env.lines()
            .any(|l| l == "HTTP_X_FORWARDED_FOR=203.0.113.7, 127.0.0.1"),
        "{env}"
    );
    assert!(!env.contains("6.6.6.6"), "{env}");
    // httpoxy: no HTTP_PROXY for the guest's HTTP clients to obey.
    assert!(
        !env.contains("HTTP_PROXY") && !env.contains("evil"),
        "{env}"
    );
    // Underscored names are dropped, as nginx and Apache do.
    assert!(!env.contains("underscored"), "{env}");
    assert!(env.lines().any(|l| l == "HTTP_X_CUSTOM_OK=dashed"), "{env}");
}

/// Sends `head` (a request without its blank line) and then `body` in
/// 64 KiB pieces from another thread, ignoring write errors (the server may
/// answer and close first); returns the response's status line and the
/// rest of what the server sent.
fn raw_exchange(server: &UpServer, head: &str, body: Vec<u8>, pause: Option<Duration>) -> String {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for piece in body.chunks(64 << 10) {
            if writer.write_all(piece).is_err() {
                return;
            }
        }
        if let Some(pause) = pause {
            // Keep the connection open, silent: the stalling client is
            // the behaviour under test.
            std::thread::sleep(pause);
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && pause.is_some() {
                    break;
                }
            }
        }
    }
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn request_bodies_stream_to_stdin_up_to_the_limit() {
    let server = UpServer::start(&example("wagi-hello"), &["--max-body", "1M"]).unwrap();
    // Under the limit, with a length and chunked: the guest counts it all
    // as it streams in.
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let sum = sent.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    let expected = format!("bytes=1000000 sum={sum}\n");
    let response = client()
        .post(server.url("/count"))
        .body(sent.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), expected);
    let chunked = reqwest::blocking::Body::new(std::io::Cursor::new(sent));
    let response = client()
        .post(server.url("/count"))
        .body(chunked)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), expected);

    // A Content-Length over the limit is refused before anything runs.
    let over = 2usize << 20;
    let answer = raw_exchange(
        &server,
        &format!("POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: {over}"),
        Vec::new(),
        None,
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 1048576 bytes"), "{answer}");

    // A chunked body is counted while it streams: 413 once it passes.
    let mut chunked = Vec::new();
    for _ in 0..(over / 65536) {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend_from_slice(&[b'x'; 65536]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(
        &server,
        "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked",
        chunked,
        None,
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn a_stalled_body_gets_408_and_frees_the_slot() {
    let server = UpServer::start(
        &example("wagi-hello"),
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
    // Half a body, then silence (the request timeout is 30 s).
    let answer = raw_exchange(
        &server,
        "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100000",
        vec![b'x'; 1000],
        Some(Duration::from_secs(10)),
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("no request body data"), "{answer}");
    // The only slot is free again.
    let response = client().get(server.url("/")).send().unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn buffered_output_beyond_the_server_budget_is_503() {
    let server = UpServer::start_with_env(
        &example("wagi-hello"),
        &[],
        &[("WPAAS_BUFFER_BUDGET", "1M")],
    )
    .unwrap();
    // The echo's response is buffered: half a MiB fits, two do not.
    let small = vec![7u8; 512 << 10];
    let response = client()
        .post(server.url("/echo"))
        .body(small.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.bytes().unwrap() == small);
    let response = client()
        .post(server.url("/echo"))
        .body(vec![7u8; 2 << 20])
        .send()
        .unwrap();
    assert_eq!(response.status(), 503);
    let body = response.text().unwrap();
    // The visitor sees the error page; the server's log says why.
    assert!(body.starts_with("Application error\n"), "{body}");
    wpaas_tests::eventually(Duration::from_secs(5), || {
        let stderr = server.stderr();
        match stderr.contains("memory budget") {
            true => Ok(()),
            false => Err(format!("no cause in the server's log:\n{stderr}")),
        }
    });
    // What the refused one held was given back.
    let response = client()
        .post(server.url("/echo"))
        .body(small.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
}
