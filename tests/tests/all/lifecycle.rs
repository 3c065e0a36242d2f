//! Capacity, shutdown, the compiled-code cache and building crates.

use std::path::Path;
use std::time::{Duration, Instant};

use wpaas_tests::pending::PendingGet;
use wpaas_tests::{client, eventually, example, wpaas_bin, UpServer};

#[test]
fn full_queue_answers_503_with_retry_after() {
    let server =
        UpServer::start(&example("hostile"), &["--concurrency", "1", "--queue", "1"]).unwrap();
    let host = &server.addr.to_string();
    // One request runs; once the server has it, a second waits in the
    // queue; once the server has that one too, a third finds it full.
    let running = PendingGet::send(server.addr, host, "/sleep?ms=1500");
    running.wait_until_read();
    let queued = PendingGet::send(server.addr, host, "/sleep?ms=1500");
    queued.wait_until_read();
    let rejected = client().get(server.url("/sleep?ms=1500")).send().unwrap();
    assert_eq!(rejected.status(), 503);
    assert_eq!(rejected.headers()["retry-after"], "1");
    assert_eq!(running.answer().0, 200);
    assert_eq!(queued.answer().0, 200, "the queued request is served");
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let mut server = UpServer::start(&example("hostile"), &[]).unwrap();
    let in_flight = PendingGet::send(server.addr, &server.addr.to_string(), "/sleep?ms=1500");
    in_flight.wait_until_read();
    server.terminate();
    // No new connections once shutdown started.
    eventually(
        Duration::from_secs(5),
        || match std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)) {
            Err(_) => Ok(()),
            Ok(_) => Err("the listener is still accepting after SIGTERM".to_string()),
        },
    );
    let (status, body) = in_flight.answer();
    assert_eq!(status, 200);
    assert!(body.contains("slept 1500"), "{body}");
    let exit = server
        .wait_exit(Duration::from_secs(10))
        .expect("server exits after draining");
    assert!(exit.success(), "exit status {exit}");
}

fn cwasm_files(home: &Path) -> Vec<std::path::PathBuf> {
    let dir = home.join("cache/compiled");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

#[test]
fn second_start_loads_cached_compiled_code() {
    let home = tempfile::tempdir().unwrap();
    let wasm = example("hello");

    let first = UpServer::start_in(home.path(), &wasm, &[]).unwrap();
    assert_eq!(client().get(first.url("/")).send().unwrap().status(), 200);
    let stderr = first.stop();
    assert!(stderr.contains("Compiled hello.wasm"), "{stderr}");
    let files = cwasm_files(home.path());
    assert_eq!(files.len(), 1, "one compiled artifact: {files:?}");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    let second = UpServer::start_in(home.path(), &wasm, &[]).unwrap();
    assert_eq!(client().get(second.url("/")).send().unwrap().status(), 200);
    let stderr = second.stop();
    assert!(
        stderr.contains("from the compiled-code cache"),
        "second start compiled again: {stderr}"
    );
    assert_eq!(cwasm_files(home.path()), files);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        written,
        "the cached artifact was rewritten"
    );
}

#[test]
fn up_builds_a_crate_and_a_build_error_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = wpaas_tests::workspace_root().join("sdk");
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nwpaas-sdk = {{ path = {:?} }}\n\n[workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() { let x: u32 = \"not a number\"; }\n",
    )
    .unwrap();
    let started = Instant::now();
    let output = std::process::Command::new(wpaas_bin())
        .args(["up", "--listen", "127.0.0.1:0"])
        .arg(dir.path())
        .env("WPAAS_HOME", dir.path().join("home"))
        .env("CARGO_TARGET_DIR", wpaas_tests::examples_target_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a broken crate must not serve");
    assert!(!stdout.contains("Serving"), "{stdout}");
    assert!(stderr.contains("Rust app detected"), "{stderr}");
    assert!(
        stderr.contains("mismatched types"),
        "cargo's error is shown: {stderr}"
    );
    assert!(stderr.contains("error: cargo build failed"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(600));
}

#[test]
fn up_builds_and_serves_a_crate_directory() {
    let crate_dir = wpaas_tests::workspace_root().join("examples/hello");
    let server = UpServer::start(&crate_dir, &[]).unwrap();
    let body = client()
        .get(server.url("/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("Hello from wpaas!"), "{body}");
    let stderr = server.stop();
    assert!(stderr.contains("Rust app detected"), "{stderr}");
}
