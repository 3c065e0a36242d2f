//! `wpaas new NAME [--template T]`: an app that deploys with no edits.

use wpaas_tests::{text, Server};

/// `wpaas new NAME ARGS…` in `dir`, then `wpaas deploy` in ./NAME; the
/// body of `GET /`.
fn new_and_deploy(server: &Server, dir: &std::path::Path, name: &str, args: &[&str]) -> String {
    let mut all = vec!["new", name];
    all.extend_from_slice(args);
    let out = server.cli(dir, &all);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("Created {name} from the")),
        "{}",
        text(&out)
    );
    let out = server.cli(&dir.join(name), &["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    let response = server.get(name, "/");
    assert_eq!(response.status(), 200);
    response.text().unwrap()
}

#[test]
fn new_apps_deploy_with_no_edits() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let body = new_and_deploy(&server, dir.path(), "app1", &[]);
    assert!(body.contains("Hello from app1! (GET /)"), "{body}");
    let body = new_and_deploy(&server, dir.path(), "cgi1", &["--template", "wagi"]);
    assert!(body.starts_with("Hello from cgi1! (GET "), "{body}");
}

#[test]
fn wpaas_new_refuses_bad_names_templates_and_used_directories() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(wpaas_tests::wpaas_bin())
            .args(args)
            .current_dir(dir.path())
            .env("WPAAS_HOME", home.path())
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let (ok, out) = run(&["new", "Bad_Name"]);
    assert!(!ok);
    assert!(out.contains("invalid app name \"Bad_Name\""), "{out}");
    let (ok, out) = run(&["new", "app2", "--template", "cobol"]);
    assert!(!ok);
    assert!(out.contains("unknown template \"cobol\""), "{out}");
    assert!(out.contains("rust") && out.contains("wagi"), "{out}");
    std::fs::create_dir(dir.path().join("used")).unwrap();
    std::fs::write(dir.path().join("used/keep.txt"), "mine").unwrap();
    let (ok, out) = run(&["new", "used"]);
    assert!(!ok);
    assert!(
        out.contains("used already exists and is not empty"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("used/keep.txt")).unwrap(),
        "mine"
    );
    // --list names every template, one per line.
    let (ok, out) = run(&["new", "--list"]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l == "rust") && out.lines().any(|l| l == "wagi"),
        "{out}"
    );
    // No clap error for a missing NAME with --list, and nothing written.
    assert!(!dir.path().join("app2").exists());
}
