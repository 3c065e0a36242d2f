//! Deploying a crate whose path dependencies live outside its directory.

use wpaas_tests::{workspace_root, Server};

#[test]
fn deploy_examples_hello_from_source_with_its_sdk() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    // examples/hello depends on `wpaas-sdk = { path = "../../sdk" }`.
    let out = server.cli(
        &workspace_root().join("examples/hello"),
        &["deploy", "-a", "hello"],
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Including path dependency ../../sdk"), "{log}");
    assert!(
        log.contains("-----> Building examples/hello (uploaded with its path dependencies)"),
        "{log}"
    );
    assert!(log.contains("-----> Rust app detected"), "{log}");
    assert!(
        log.contains("Released v1: http://hello.localhost:"),
        "{log}"
    );

    let response = server.get("hello", "/");
    assert_eq!(response.status(), 200);
    let body = response.text().unwrap();
    assert!(
        body.contains("Hello from wpaas! (GREETING=unset)"),
        "{body}"
    );
}
