//! What a deploy says about its build agrees with what is recorded: the
//! slug digest it prints is the release's, and build ids stay dense across
//! a `kill -9` restart.

use wpaas_api::builds::Build;
use wpaas_tests::{example, Server};

#[test]
fn the_printed_slug_digest_is_the_releases() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let server = Server::start(home.path()).unwrap();
    let out = server.ok(src.path(), &["deploy", "-a", "digests"]);
    let printed = out
        .lines()
        .find_map(|line| line.split_once(", slug ").map(|(_, digest)| digest.trim()))
        .unwrap_or_else(|| panic!("no slug digest in the deploy's output:\n{out}"));
    assert!(!out.contains("Slug ready, digest"), "{out}");
    let slug = server.releases("digests")[0].slug.clone().unwrap();
    assert_eq!(printed, &slug[..12], "{out}");
}

#[test]
fn build_ids_continue_densely_after_a_kill() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let ids = |server: &Server| -> Vec<String> {
        let builds: Vec<Build> = server.cli_json(src.path(), &["builds", "-a", "dense", "--json"]);
        let mut ids: Vec<String> = builds.into_iter().map(|b| b.id).collect();
        ids.sort();
        ids
    };
    let server = Server::start(home.path()).unwrap();
    server.ok(src.path(), &["deploy", "-a", "dense"]);
    server.ok(src.path(), &["deploy", "-a", "dense"]);
    assert_eq!(ids(&server), ["b1", "b2"]);
    server.kill();
    let server = Server::start(home.path()).unwrap();
    server.ok(src.path(), &["deploy", "-a", "dense"]);
    assert_eq!(ids(&server), ["b1", "b2", "b3"]);
}
