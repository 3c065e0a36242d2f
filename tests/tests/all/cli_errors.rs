//! How the CLI fails: one `error:` line saying each cause once (and a
//! `hint:` line where it has one), decisions taken on the API's error code,
//! and logs without colour codes when they go to a file.

use wpaas_tests::{example, Server};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn deploying_a_missing_directory_says_the_cause_once() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    // With and without -a: the directory is read at different places.
    for args in [
        vec!["deploy", "missing-dir"],
        vec!["deploy", "-a", "ghost", "missing-dir"],
    ] {
        let out = server.cli(home.path(), &args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "{args:?}: {err}");
        assert!(
            line.starts_with("error: could not read "),
            "{args:?}: {err}"
        );
        assert_eq!(line.matches("could not read").count(), 1, "{args:?}: {err}");
        assert_eq!(
            line.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
    }
    // Nothing was created for the failed deploy.
    let out = server.cli(home.path(), &["apps"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ghost"));
}

#[test]
fn an_unreachable_server_is_one_error_and_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(wpaas_tests::wpaas_bin())
        .args(["apps", "--api", "http://127.0.0.1:9"])
        .env("WPAAS_HOME", home.path())
        .env("WPAAS_TOKEN", "t")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("error: could not reach the wpaas API at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(lines[1].starts_with("hint: "), "{err}");
}

#[test]
fn an_existing_app_is_a_conflict_not_a_failure_of_deploy() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let server = Server::start(home.path()).unwrap();

    let out = server.cli(src.path(), &["apps:create", "twice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Creating it again: the server answers 409 with code "conflict".
    let out = server.cli(src.path(), &["apps:create", "twice"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert!(
        !err.contains("HTTP"),
        "the status is not the user's business: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // deploy creates a missing app and takes the conflict for "it is
    // there": it deploys without creating.
    let out = server.cli(src.path(), &["deploy", "-a", "twice"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("Creating twice"), "{err}");
}

#[test]
fn the_server_log_in_a_file_has_no_colour_codes() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    // The harness sends the server's stderr to a file.
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "plain"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = wpaas_tests::eventually(std::time::Duration::from_secs(10), || {
        let log = server.stderr();
        if log.contains("INFO") {
            Ok(log)
        } else {
            Err(format!("no INFO line yet: {log}"))
        }
    });
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in the log file: {log:?}"
    );
    // `wpaas logs` into a pipe: plain too.
    let out = server.cli(src.path(), &["logs", "-a", "plain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("app[api]"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
}
