//! The Python buildpack: componentize-py builds a wasi:http component on
//! the server, from the SDK's `handle(request)` or a WSGI app (Flask), and
//! it gets config, scaling and logs like any app.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wpaas_tests::{eventually, replicas, text, workspace_root, Server};

fn example(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

/// `Built app.wasm (…)` from a build's output.
fn built_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("Built app.wasm ("))
        .unwrap_or_else(|| panic!("no Built line in {log}"))
}

#[test]
fn python_hello_deploys_from_source_with_config_scale_and_logs() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let hello = example("python-hello");
    let started = Instant::now();
    let out = server.cli(&hello, &["deploy", "-a", "pyhello"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    eprintln!(
        "python-hello deploy: {:.1}s; {}",
        started.elapsed().as_secs_f64(),
        built_line(&log).trim()
    );
    assert!(log.contains("-----> Python app detected"), "{log}");
    assert!(
        log.contains("-----> Building app.wasm with componentize-py-0.25.1"),
        "{log}"
    );
    assert!(log.contains("Default types for buildpack -> web"), "{log}");
    assert!(
        log.contains("Released v1: http://pyhello.localhost:"),
        "{log}"
    );

    let slug = home.path().join("slugs/unpacked");
    let unpacked: Vec<_> = std::fs::read_dir(&slug).unwrap().flatten().collect();
    assert_eq!(unpacked.len(), 1, "{unpacked:?}");
    let mut files: Vec<String> = std::fs::read_dir(unpacked[0].path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["Procfile", "app.py", "app.wasm"]);

    let response = server.get("pyhello", "/?who=snake");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let body = response.text().unwrap();
    assert_eq!(body, "Hello, snake, from Python! dyno=web.1\n");
    assert_eq!(server.get("pyhello", "/nope").status(), 404);

    // Config reaches the app as os.environ, in a new release.
    let out = server.cli(&hello, &["config:set", "GREETING=Hej", "-a", "pyhello"]);
    assert!(text(&out).contains("done, v2"), "{}", text(&out));
    let body = server.get("pyhello", "/").text().unwrap();
    assert!(body.starts_with("Hej, world, from Python!"), "{body}");

    // Two replicas, both serving.
    server.ok(&hello, &["ps:scale", "web=2", "-a", "pyhello"]);
    assert_eq!(replicas(&server.ps("pyhello"), "web").len(), 2);
    let dynos: BTreeSet<String> = (0..8)
        .map(|_| {
            let body = server.get("pyhello", "/").text().unwrap();
            body.rsplit("dyno=").next().unwrap().trim().to_string()
        })
        .collect();
    assert_eq!(
        dynos.iter().map(String::as_str).collect::<Vec<_>>(),
        ["web.1", "web.2"]
    );

    // What the app prints is its log, next to the router's lines.
    eventually(Duration::from_secs(10), || {
        let logs = text(&server.cli(&hello, &["logs", "-a", "pyhello", "-n", "500"]));
        let app_line = logs
            .lines()
            .any(|l| l.contains("app[web.") && l.contains("python-hello: GET /nope"));
        let router_line = logs
            .lines()
            .any(|l| l.contains("app[router]") && l.contains("status=404"));
        if app_line && router_line {
            Ok(logs)
        } else {
            Err(logs)
        }
    });
}

#[test]
fn a_flask_app_runs_unchanged_and_a_one_line_change_rebuilds() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    // A copy, so the test can edit it; a fresh app name each run would
    // miss the dependency cache, so the first deploy may install them.
    let src = tempfile::tempdir().unwrap();
    for file in ["app.py", "requirements.txt"] {
        std::fs::copy(example("python-flask").join(file), src.path().join(file)).unwrap();
    }
    let started = Instant::now();
    let out = server.cli(src.path(), &["deploy", "-a", "pyflask"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    eprintln!(
        "python-flask deploy: {:.1}s; {}",
        started.elapsed().as_secs_f64(),
        built_line(&log).trim()
    );
    // Installed, or (the test run's build cache is shared) already cached.
    assert!(
        log.contains("-----> Installing dependencies from requirements.txt (pure Python)")
            || log.contains("-----> Using the dependencies of requirements.txt (cached)"),
        "{log}"
    );

    let body = server.get("pyflask", "/").text().unwrap();
    assert_eq!(body, "Hello from Flask on wpaas!\n");
    let response = server.get("pyflask", "/hello/ada?lang=py");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let json: serde_json::Value = response.json().unwrap();
    assert_eq!(
        json,
        serde_json::json!({"hello": "ada", "args": {"lang": "py"}})
    );
    assert_eq!(server.get("pyflask", "/missing").status(), 404);

    // One line changed: the dependencies come from the cache.
    let app = src.path().join("app.py");
    let code = std::fs::read_to_string(&app).unwrap();
    std::fs::write(
        &app,
        code.replace("from Flask on wpaas", "from Flask, edited"),
    )
    .unwrap();
    let started = Instant::now();
    let out = server.cli(src.path(), &["deploy", "-a", "pyflask"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    eprintln!(
        "python-flask one-line rebuild: deploy {:.1}s; {}",
        started.elapsed().as_secs_f64(),
        built_line(&log).trim()
    );
    assert!(
        log.contains("Using the dependencies of requirements.txt (cached)"),
        "{log}"
    );
    let body = server.get("pyflask", "/").text().unwrap();
    assert_eq!(body, "Hello from Flask, edited!\n");
}

#[test]
fn a_native_dependency_fails_the_build_with_its_name() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(
        example("python-hello").join("app.py"),
        src.path().join("app.py"),
    )
    .unwrap();
    std::fs::write(src.path().join("requirements.txt"), "ujson==5.10.0\n").unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "pynative"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("the Python dependency ujson has native extensions (compiled C), which cannot run in a WebAssembly component"),
        "{log}"
    );
    // A first deploy that fails releases nothing and leaves no app.
    assert!(!server
        .ok(src.path(), &["apps"])
        .lines()
        .any(|l| l == "pynative"));
}

#[test]
fn wpaas_new_python_deploys_with_no_edits() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.ok(dir.path(), &["new", "pynew", "--template", "python"]);
    let app: &Path = &dir.path().join("pynew");
    let out = server.cli(app, &["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    let body = server.get("pynew", "/x").text().unwrap();
    assert_eq!(body, "Hello from pynew! (GET /x)\n");
}

#[test]
fn a_python_app_counts_visits_and_stores_json_in_its_bucket() {
    crate::keyvalue::a_data_app_counts_and_stores(&example("python-kv"), "pykv");
}
