//! Rust as people write it, deployed from source: the wasi:http tutorial
//! (a `cargo component` crate, tests/fixtures/hello-wasi-http) and every
//! directory of examples/, each as it is.

use std::path::Path;
use std::time::Instant;

use wpaas_tests::{text, workspace_root, Server};

/// Copies the directory `from` into `to` (created), without `target/`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "target" {
            continue;
        }
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `wpaas deploy DIR -a APP`, which must succeed; its output and seconds.
fn deploy(server: &Server, dir: &Path, app: &str) -> (String, f64) {
    let started = Instant::now();
    let out = server.cli(dir, &["deploy", "-a", app]);
    let seconds = started.elapsed().as_secs_f64();
    let log = text(&out);
    assert!(out.status.success(), "deploy {app}: {log}");
    (log, seconds)
}

#[test]
fn the_wasi_http_tutorial_deploys_from_source_unchanged() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    let app = src.path().join("hello-wasi-http");
    copy_dir(
        &workspace_root().join("tests/fixtures/hello-wasi-http"),
        &app,
    );

    let (log, cold) = deploy(&server, &app, "hello-wasi-http");
    assert!(
        log.contains(
            "Building hello-wasi-http for wasm32-wasip2 (a component: [package.metadata.component] (cargo component))"
        ),
        "{log}"
    );
    assert!(
        log.contains("Built hello_wasi_http.wasm") && log.contains("wasm32-wasip2)"),
        "{log}"
    );
    let response = server.get("hello-wasi-http", "/");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "Hello, wasi:http/proxy world!\n");

    // A one-line change rebuilds only the crate.
    let lib = app.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("proxy world!", "proxy world, again!")).unwrap();
    let (log, rebuild) = deploy(&server, &app, "hello-wasi-http");
    assert!(!log.contains("Compiling wit-bindgen-rt"), "{log}");
    assert_eq!(
        server.get("hello-wasi-http", "/").text().unwrap(),
        "Hello, wasi:http/proxy world, again!\n"
    );
    eprintln!("hello-wasi-http from source: deploy {cold:.1}s (cold or cached), one-line rebuild {rebuild:.1}s");
}

#[test]
fn every_example_deploys_as_it_is() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let examples = workspace_root().join("examples");
    let mut dirs: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 6, "{dirs:?}");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (log, seconds) = deploy(&server, &dir, &name);
        eprintln!("examples/{name}: deployed from source in {seconds:.1}s");
        // The SDK comes from the platform, not from ../sdk.
        assert!(!log.contains("Including path dependency"), "{log}");
        let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap_or_default();
        if procfile.is_empty() || procfile.lines().any(|l| l.starts_with("web:")) {
            let response = server.get(&name, "/");
            assert!(
                response.status().is_success(),
                "{name}: {}",
                response.status()
            );
        } else {
            // A worker-only app: released without a web health check, with
            // its process types declared.
            for line in procfile.lines().filter(|l| !l.starts_with('#')) {
                let Some((kind, _)) = line.split_once(':') else {
                    continue;
                };
                let ps = server.ps(&name);
                assert!(ps.iter().any(|p| p.kind == kind), "{name} {kind}: {ps:?}");
            }
        }
    }
}
