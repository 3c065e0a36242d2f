//! What the CLI tells about releases it makes without a build: the release
//! phase's output on `config:set`/`rollback` and by `releases:output`, the
//! refusals that make no release, deploys that fail or serve no web, and
//! one-off runs. Pinned by golden transcripts (tests/golden/).

use std::path::Path;
use std::time::Duration;

use wpaas_tests::golden::Transcript;
use wpaas_tests::{eventually, example, text, Server};

/// hello.wasm as `web`, worker.wasm for the rest, with `procfile`.
fn app_source(dir: &Path, procfile: &str) {
    std::fs::copy(example("hello"), dir.join("hello.wasm")).unwrap();
    std::fs::copy(example("worker"), dir.join("worker.wasm")).unwrap();
    std::fs::write(dir.join("Procfile"), procfile).unwrap();
}

/// Waits until `app`'s log file has a line containing `needle`.
fn wait_for_log(server: &Server, app: &str, needle: &str) -> String {
    eventually(Duration::from_secs(10), || {
        let log = server.app_log(app);
        if log.contains(needle) {
            Ok(log)
        } else {
            Err(format!("no {needle:?} in the log yet:\n{log}"))
        }
    })
}

#[test]
fn release_phase_output_is_shown_kept_and_logged() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    app_source(
        src.path(),
        "web: hello.wasm\nrelease: worker.wasm once $RELEASE_EXIT\n",
    );
    let server = Server::start(home.path()).unwrap();
    let dir = src.path();
    server.ok(dir, &["apps:create", "phased"]);
    server.ok(dir, &["config:set", "RELEASE_EXIT=0", "-a", "phased"]);
    server.ok(dir, &["deploy", "-a", "phased"]);

    let mut t = Transcript::new("release_output");
    t.redact_server(&server);
    // A deploy is named after its slug's digest, which the compiler decides.
    let deployed = server.releases("phased")[0].description.clone();
    t.redact(deployed, "Deploy [SHORT]");
    t.note("v2 is the deploy; config changes run the release phase too");
    t.ok(&server, dir, &["config:set", "GREETING=hi", "-a", "phased"]);
    t.fails(
        &server,
        dir,
        &["config:set", "RELEASE_EXIT=4", "-a", "phased"],
    );
    t.ok(&server, dir, &["releases:output", "v4", "-a", "phased"]);
    t.ok(&server, dir, &["releases:output", "-a", "phased"]);
    t.ok(&server, dir, &["releases:output", "v1", "-a", "phased"]);
    t.note("a failed release is no place to go back to");
    t.fails(&server, dir, &["rollback", "v4", "-a", "phased"]);
    t.ok(&server, dir, &["rollback", "-a", "phased"]);
    t.note("unsetting what is not set makes no release");
    t.ok(&server, dir, &["config:unset", "NOTTHERE", "-a", "phased"]);
    t.ok(&server, dir, &["releases", "-a", "phased"]);
    t.check();

    // Those releases are in the app's log like a deploy's build.
    let log = wait_for_log(
        &server,
        "phased",
        "app[build]:        once: exiting with status 4",
    );
    assert!(
        log.contains("app[build]: -----> Running release command: worker.wasm once $RELEASE_EXIT"),
        "{log}"
    );
    assert!(
        log.contains("Release v4 failed: Set RELEASE_EXIT config vars"),
        "{log}"
    );
    // The API refuses the no-op itself (a client other than the CLI).
    let answer = server
        .api_request(reqwest::Method::PATCH, "/apps/phased/config")
        .json(&serde_json::json!({"NOTTHERE": null}))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 409);
    assert_eq!(server.releases("phased").len(), 5);

    // The kept output outlives the server.
    server.kill();
    let server = Server::start(home.path()).unwrap();
    let out = server.ok(dir, &["releases:output", "v4", "-a", "phased"]);
    assert!(out.contains("once: exiting with status 4"), "{out}");
}

#[test]
fn a_failed_deploy_leaves_no_app_and_says_its_error_once() {
    let home = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let unbuildable = tempfile::tempdir().unwrap();
    std::fs::write(unbuildable.path().join("notes.txt"), "no app here\n").unwrap();
    let server = Server::start(home.path()).unwrap();

    let mut t = Transcript::new("deploy_errors");
    t.redact_server(&server);
    t.redact(empty.path().display().to_string(), "[EMPTY]");
    t.fails(&server, empty.path(), &["deploy", "-a", "typo"]);
    t.fails(&server, unbuildable.path(), &["deploy", "-a", "typo"]);
    t.ok(&server, empty.path(), &["apps"]);
    t.check();
    let apps = server.ok(empty.path(), &["apps", "--json"]);
    assert!(!apps.contains("typo"), "{apps}");
}

#[test]
fn a_worker_only_deploy_says_how_to_start_its_worker() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("worker"), src.path().join("worker.wasm")).unwrap();
    std::fs::write(src.path().join("Procfile"), "worker: worker.wasm\n").unwrap();
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "jobs"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Vec<&str> = stdout.trim_end().lines().rev().take(2).collect();
    assert_eq!(
        last,
        [
            "-----> No process runs yet; start one with: wpaas ps:scale worker=1 -a jobs",
            &format!(
                "-----> Released v1 (no web process: nothing answers at http://jobs.localhost:{})",
                server.router.port()
            ),
        ],
        "{said}"
    );
    // Once scaled, a new release says only that it serves no web.
    server.ok(src.path(), &["ps:scale", "worker=1", "-a", "jobs"]);
    let out = server.ok(src.path(), &["deploy", "-a", "jobs"]);
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("-----> Released v2 (no web process: nothing answers at"),
        "{out}"
    );
    assert!(!out.contains("ps:scale"), "{out}");
}

#[test]
fn run_takes_its_module_without_dashes_and_names_itself() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    app_source(src.path(), "web: hello.wasm\n");
    let server = Server::start(home.path()).unwrap();
    let dir = src.path();
    server.ok(dir, &["deploy", "-a", "oneoff"]);

    let mut t = Transcript::new("run");
    t.redact_server(&server);
    t.run(
        &server,
        dir,
        &["run", "-a", "oneoff", "worker.wasm", "once", "3"],
    );
    t.run(
        &server,
        dir,
        &["run", "-a", "oneoff", "worker.wasm", "once", "-x"],
    );
    t.fails(&server, dir, &["run", "-a", "oneoff", "--", "nothere.wasm"]);
    t.check();
    // The runs count per app, and their lines are in its log as run.N.
    let log = wait_for_log(&server, "oneoff", "app[run.2]: once: running as run.2");
    assert!(log.contains("app[run.1]: once: running as run.1"), "{log}");
}
