//! The JavaScript buildpack: esbuild bundles the app (and its npm
//! dependencies), componentize-js makes it a wasi:http component, and it
//! gets config, scaling and logs like any app.

use std::collections::BTreeSet;
use std::time::Duration;

use wpaas_tests::{eventually, replicas, text, workspace_root, Server};

fn example(name: &str) -> std::path::PathBuf {
    workspace_root().join("examples").join(name)
}

#[test]
fn js_hello_deploys_from_source_with_config_scale_and_logs() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let dir = example("js-hello");
    let out = server.cli(&dir, &["deploy", "-a", "jshello"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("-----> JavaScript app detected"), "{log}");
    assert!(log.contains("Using componentize-js 0.23.0"), "{log}");
    assert!(log.contains("No dependencies in package.json"), "{log}");
    assert!(
        log.contains("Bundling: esbuild index.js --bundle --format=esm"),
        "{log}"
    );
    assert!(log.contains("Built app.wasm ("), "{log}");
    assert!(log.contains("Default types for buildpack -> web"), "{log}");
    assert!(
        log.contains("Released v1: http://jshello.localhost:"),
        "{log}"
    );

    let response = server.get("jshello", "/?who=JS%20fan");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let body = response.text().unwrap();
    assert!(
        body.contains("Hello, JS fan, from JavaScript! (GREETING=unset)"),
        "{body}"
    );
    assert!(body.contains("method=GET path=/ dyno=web.1"), "{body}");
    assert_eq!(server.get("jshello", "/nope").status(), 404);

    // Config reaches process.env, in a new release.
    let out = server.cli(&dir, &["config:set", "GREETING=hej", "-a", "jshello"]);
    assert!(text(&out).contains("done, v2"), "{}", text(&out));
    let body = server.get("jshello", "/").text().unwrap();
    assert!(
        body.contains("Hello, world, from JavaScript! (GREETING=hej)"),
        "{body}"
    );

    // Two replicas, both serving.
    server.ok(&dir, &["ps:scale", "web=2", "-a", "jshello"]);
    assert_eq!(replicas(&server.ps("jshello"), "web").len(), 2);
    let dynos: BTreeSet<String> = (0..8)
        .map(|_| {
            let body = server.get("jshello", "/").text().unwrap();
            body.rsplit("dyno=").next().unwrap().trim().to_string()
        })
        .collect();
    assert_eq!(
        dynos.iter().map(String::as_str).collect::<Vec<_>>(),
        ["web.1", "web.2"]
    );

    // console.log is the app's log, next to the router's lines.
    let logs = eventually(Duration::from_secs(10), || {
        let out = server.cli(&dir, &["logs", "-a", "jshello", "-n", "500"]);
        let logs = text(&out);
        let app_line = logs
            .lines()
            .any(|l| l.contains("app[web.") && l.contains("js-hello: GET /nope"));
        let router_line = logs
            .lines()
            .any(|l| l.contains("app[router]") && l.contains("status=404"));
        if app_line && router_line {
            Ok(logs)
        } else {
            Err(logs)
        }
    });
    assert!(logs.contains("JavaScript app detected"), "{logs}");
}

#[test]
fn a_hono_app_with_npm_dependencies_serves_its_routes() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let dir = example("js-hono");
    let out = server.cli(&dir, &["deploy", "-a", "jshono"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("-----> JavaScript app detected"), "{log}");
    assert!(
        log.contains("Installing dependencies: npm ci --ignore-scripts")
            || log.contains("Using cached node_modules"),
        "{log}"
    );
    assert!(log.contains("Bundling: esbuild src/index.js"), "{log}");

    let body = server.get("jshono", "/").text().unwrap();
    assert_eq!(body, "Hello from Hono on wpaas! (GREETING=unset)\n");
    let user = server.get("jshono", "/users/42");
    assert_eq!(user.status(), 200);
    assert!(user.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(user.text().unwrap(), r#"{"id":42,"name":"user 42"}"#);
    let echo = wpaas_tests::client()
        .post(format!("http://{}/echo", server.router))
        .header("host", "jshono.localhost")
        .header("content-type", "application/json")
        .body(r#"{"a":[1,2]}"#)
        .send()
        .unwrap();
    assert_eq!(echo.status(), 201);
    assert_eq!(echo.text().unwrap(), r#"{"received":{"a":[1,2]}}"#);
    let missing = server.get("jshono", "/nope");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().unwrap(), "no route for GET /nope\n");

    // A second deploy of the same source reuses node_modules.
    let out = server.cli(&dir, &["deploy", "-a", "jshono"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Using cached node_modules"), "{log}");
}

#[test]
fn a_syntax_error_fails_the_build_with_esbuilds_message() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("package.json"), r#"{"name":"broken"}"#).unwrap();
    std::fs::write(
        src.path().join("index.js"),
        "addEventListener(\"fetch\", (e) => {\n  e.respondWith(new Response(\"hi\");\n});\n",
    )
    .unwrap();
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "jsbroken"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("-----> JavaScript app detected"), "{log}");
    // esbuild's own message, with file and line, then the verdict.
    assert!(
        log.contains("[ERROR] Expected \")\" but found \";\""),
        "{log}"
    );
    assert!(log.contains("index.js:2:"), "{log}");
    assert!(
        log.contains("the JavaScript build failed: `esbuild index.js --bundle"),
        "{log}"
    );
    // A first deploy that fails releases nothing and leaves no app.
    assert!(!server
        .ok(src.path(), &["apps"])
        .lines()
        .any(|l| l == "jsbroken"));
}

#[test]
fn wpaas_new_template_js_deploys_with_no_edits() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = server.cli(dir.path(), &["new", "jsnew", "--template", "js"]);
    assert!(out.status.success(), "{}", text(&out));
    let app = dir.path().join("jsnew");
    assert!(app.join("package.json").is_file());
    let out = server.cli(&app, &["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    let response = server.get("jsnew", "/hi");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "Hello from jsnew! (GET /hi)\n");
}

#[test]
fn a_javascript_app_counts_visits_and_stores_json_in_its_bucket() {
    crate::keyvalue::a_data_app_counts_and_stores(&example("js-kv"), "jskv");
}
