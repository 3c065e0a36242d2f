//! WASI preview-1 modules served CGI-style (WAGI).

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
