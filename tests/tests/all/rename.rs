//! `apps:rename`: an app keeps everything it has under a new name — code,
//! releases, config, domains, key-value data, log, git repository — the
//! old name stops answering, and a restart changes nothing of it.

use std::path::Path;

use wpaas_tests::golden::Transcript;
use wpaas_tests::{client, example, text, Server};

fn git_ok(server: &Server, dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = server.git(dir, home, args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The body `domain` gets from the router.
fn via_domain(server: &Server, domain: &str) -> (u16, String) {
    let response = client()
        .get(format!("http://{}/", server.router))
        .header("host", domain)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn a_renamed_app_keeps_everything_under_its_new_name() {
    let home = tempfile::tempdir().unwrap();
    let checkout = tempfile::tempdir().unwrap();
    let git_home = tempfile::tempdir().unwrap();
    let dir = checkout.path();
    let server = Server::start(home.path()).unwrap();
    let g = |args: &[&str]| git_ok(&server, dir, git_home.path(), args);

    g(&["init", "-q", "--initial-branch=main"]);
    std::fs::copy(example("hello"), dir.join("hello.wasm")).unwrap();
    g(&["add", "-A"]);
    g(&["commit", "-q", "-m", "first"]);
    server.ok(dir, &["apps:create", "before"]);
    g(&["push", "-q", "wpaas", "main"]);
    server.ok(dir, &["config:set", "GREETING=renamed", "-a", "before"]);
    server.ok(dir, &["domains:add", "www.example.com", "-a", "before"]);
    server.ok(dir, &["kv:create", "notes", "-a", "before"]);
    server.ok(dir, &["kv:set", "first", "kept", "-a", "before"]);
    server.ok(dir, &["apps:create", "taken"]);
    let releases = server.releases("before");

    let mut t = Transcript::new("rename");
    t.redact_server(&server);
    t.fails(&server, dir, &["apps:rename", "before", "taken"]);
    t.fails(&server, dir, &["apps:rename", "before", "Not_Valid"]);
    t.fails(&server, dir, &["apps:rename", "ghost", "spirit"]);
    t.note("in the checkout, whose wpaas remote names the app");
    t.ok(&server, dir, &["apps:rename", "before", "after"]);
    t.ok(&server, dir, &["apps"]);
    t.ok(&server, dir, &["config:get", "GREETING"]);
    t.ok(&server, dir, &["domains"]);
    t.ok(&server, dir, &["kv:get", "first"]);
    t.check();

    let check = |server: &Server| {
        let answer = server.get("after", "/");
        assert_eq!(answer.status(), 200);
        assert!(answer.text().unwrap().contains("GREETING=renamed"));
        assert_eq!(server.get("before", "/").status(), 404);
        let (status, body) = via_domain(server, "www.example.com");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("GREETING=renamed"), "{body}");
        let now: Vec<u32> = server.releases("after").iter().map(|r| r.version).collect();
        let then: Vec<u32> = releases.iter().map(|r| r.version).collect();
        assert_eq!(now, then);
        let builds = server.ok(Path::new("/"), &["builds", "-a", "after"]);
        assert!(builds.contains("b1"), "{builds}");
        let log = server.ok(Path::new("/"), &["logs", "-a", "after"]);
        assert!(
            log.contains("Release v2 created: Set GREETING config vars"),
            "{log}"
        );
        assert!(log.contains("Renamed from before to after"), "{log}");
    };
    check(&server);
    assert!(g(&["remote", "get-url", "wpaas"]).ends_with("/git/after.git"));

    // The repository moved: a new commit pushes on top of the old ones.
    g(&["commit", "-q", "--allow-empty", "-m", "second"]);
    g(&["push", "-q", "wpaas", "main"]);
    assert_eq!(server.releases("after")[0].version, 3);

    // A restart brings it back as it is.
    server.kill();
    let server = Server::start(home.path()).unwrap();
    let releases: Vec<_> = server.releases("after");
    assert_eq!(releases[0].version, 3);
    assert_eq!(server.get("after", "/").status(), 200);
    assert_eq!(server.get("before", "/").status(), 404);
    let (status, _) = via_domain(&server, "www.example.com");
    assert_eq!(status, 200);
}
