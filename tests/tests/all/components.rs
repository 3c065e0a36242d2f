//! wasi:http components served by `wpaas up`.

use std::io::Read;

use serde_json::Value;
use std::time::Duration;

use wpaas_tests::{client, eventually, example, incompressible, UpServer};

#[test]
fn hello_answers_with_env_var_through_the_router() {
    let server = UpServer::start(&example("hello"), &["--env", "GREETING=bonjour"]).unwrap();
    let response = client().get(server.url("/")).send().unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(request_id.len(), 36, "a uuid request id: {request_id}");
    let body = response.text().unwrap();
    assert!(body.contains("Hello from wpaas!"), "{body}");
    assert!(body.contains("GREETING=bonjour"), "{body}");

    // The app also answers by name, and an unknown name falls back to the
    // default app (the one being served).
    let by_name = client()
        .get(server.url("/"))
        .header("host", format!("hello.localhost:{}", server.addr.port()))
        .send()
        .unwrap();
    assert_eq!(by_name.status(), 200);

    // Each request has its router line on stderr.
    let line = eventually(Duration::from_secs(5), || {
        let stderr = server.stderr();
        stderr
            .lines()
            .find(|l| l.contains(&format!("request_id={request_id} ")))
            .map(str::to_owned)
            .ok_or_else(|| format!("no router line for {request_id}:\n{stderr}"))
    });
    assert!(
        line.contains("app[router]: at=info method=GET path=\"/\"")
            && line.contains("dyno=web.1 connect=")
            && line.contains("status=200"),
        "{line}"
    );
}

#[test]
fn echo_sees_method_path_query_headers_body_env_and_forwarding() {
    let server = UpServer::start(&example("echo"), &["-e", "COLOR=teal"]).unwrap();
    let response = client()
        .post(server.url("/some/path?x=1&y=two"))
        .header("x-test", "yes")
        .header("x-request-id", "client-chosen-request-id-42")
        .body("the body")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-request-id"],
        "client-chosen-request-id-42"
    );
    let echo: Value = response.json().unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/some/path");
    assert_eq!(echo["query"], "x=1&y=two");
    assert_eq!(echo["body"], "the body");
    assert_eq!(echo["headers"]["x-test"], "yes");
    assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
    assert_eq!(
        echo["headers"]["x-request-id"],
        "client-chosen-request-id-42"
    );
    assert_eq!(echo["env"]["COLOR"], "teal");
}

#[test]
fn ten_mib_bodies_stream_through_a_foreign_component() {
    // raw-echo is written against the `wasi` crate directly, not our SDK.
    let server = UpServer::start(&example("raw-echo"), &[]).unwrap();
    let sent = incompressible(10 << 20);
    let response = client()
        .post(server.url("/"))
        .body(sent.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-raw-echo"], "1");
    let mut received = Vec::new();
    response.take(20 << 20).read_to_end(&mut received).unwrap();
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "echoed bytes differ");

    let generated = client().get(server.url("/?bytes=10485760")).send().unwrap();
    assert_eq!(generated.status(), 200);
    let bytes = generated.bytes().unwrap();
    assert_eq!(bytes.len(), 10 << 20);
    assert!(bytes.iter().all(|&b| b == b'x'));
}

#[test]
fn http2_cleartext_is_served() {
    let server = UpServer::start(&example("hello"), &[]).unwrap();
    let h2 = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let response = h2.get(server.url("/")).send().unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}
