//! Bounds and ownership: custom domains cannot take another app's
//! traffic, the compiled-code cache loads only what this server wrote,
//! uploads and slugs are capped, old slugs are collected, and
//! `apps:destroy` leaves nothing of the app behind.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wpaas_api::apps::App;
use wpaas_tests::{eventually, example, text, Server};

/// A source directory holding a ready example module.
fn app_source(module: &str) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example(module), src.path().join(format!("{module}.wasm"))).unwrap();
    src
}

fn deploy(server: &Server, src: &Path, app: &str) -> String {
    let out = server.cli(src, &["deploy", "-a", app]);
    let log = text(&out);
    assert!(out.status.success(), "deploy of {app} failed: {log}");
    log
}

/// Every path under `home` (relative), less the store's and the key-value
/// data's database files and the server's stderr, which change whatever the
/// apps do.
fn files(home: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let rel = entry.path().strip_prefix(home).unwrap().to_path_buf();
            if rel.starts_with("db")
                || rel.starts_with("data/kv")
                || rel == Path::new("server-stderr.log")
            {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
            found.insert(rel);
        }
    }
    found
}

fn slugs(home: &Path) -> BTreeSet<String> {
    std::fs::read_dir(home.join("slugs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tar.gz"))
        .collect()
}

#[test]
fn custom_domains_cannot_take_another_apps_traffic() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let src = app_source("hello");
    deploy(&server, src.path(), "victim");
    let out = server.cli(src.path(), &["apps:create", "attacker"]);
    assert!(out.status.success(), "{}", text(&out));

    for (name, why) in [
        ("victim.localhost", "router's own names"),
        ("VICTIM.localhost.", "router's own names"),
        ("web.victim.localhost", "router's own names"),
        ("localhost", "router's own names"),
        ("127.0.0.1", "IP addresses"),
    ] {
        let out = server.cli(src.path(), &["domains:add", name, "-a", "attacker"]);
        let said = text(&out);
        assert!(!out.status.success(), "{name} was accepted: {said}");
        assert!(said.contains(why), "{name}: {said}");
        assert!(said.contains("e.g. www.example.com"), "a hint: {said}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim().lines().count(),
            1,
            "one line: {said}"
        );
    }
    let domains: Vec<String> =
        server.cli_json(src.path(), &["domains", "-a", "attacker", "--json"]);
    assert_eq!(domains, Vec::<String>::new());
    // The victim keeps its traffic, by its name and its own domain.
    let out = server.cli(
        src.path(),
        &["domains:add", "www.victim.test", "-a", "victim"],
    );
    assert!(out.status.success(), "{}", text(&out));
    for host in ["victim.localhost", "VICTIM.localhost", "www.victim.test"] {
        let response = wpaas_tests::client()
            .get(format!("http://{}/", server.router))
            .header("host", host)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        assert!(response.text().unwrap().contains("Hello"), "{host}");
    }
    // A domain another app holds is refused, with who holds it.
    let out = server.cli(
        src.path(),
        &["domains:add", "WWW.victim.test.", "-a", "attacker"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already used by app \"victim\""),
        "{}",
        text(&out)
    );
}

#[test]
fn tampered_compiled_code_is_rejected_and_compiled_again() {
    // A cache of its own: it tampers with the files in it.
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with_own_caches(home.path(), &[]).unwrap();
    let src = app_source("hello");
    deploy(&server, src.path(), "hello");
    assert_eq!(server.get("hello", "/").status(), 200);
    server.kill();

    let cache = home.path().join("cache/compiled");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&home.path().join("cache/compiled.key")), 0o600);
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert!(!entries.is_empty(), "the deploy compiled into the cache");
    for entry in &entries {
        assert_eq!(mode(entry), 0o600, "{}", entry.display());
        // What a build or app that could write here would do: change the
        // machine code.
        let mut bytes = std::fs::read(entry).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(entry, bytes).unwrap();
    }

    let server = Server::start_with_own_caches(home.path(), &[]).unwrap();
    let response = server.get("hello", "/");
    assert_eq!(response.status(), 200);
    assert!(response.text().unwrap().contains("Hello"));
    let stderr = server.stderr();
    assert!(
        stderr.contains("rejected compiled code") && stderr.contains("MAC does not verify"),
        "{stderr}"
    );
}

/// A git request for `app`, which makes its repository.
fn git_request(server: &Server, app: &str) {
    let refs = wpaas_tests::client()
        .get(format!(
            "http://{}/git/{app}.git/info/refs?service=git-receive-pack",
            server.api
        ))
        .basic_auth("wpaas", Some(server.token()))
        .send()
        .unwrap();
    assert_eq!(refs.status(), 200);
}

#[test]
fn apps_destroy_leaves_nothing_of_the_app() {
    // Caches of its own: what the app leaves in them is checked.
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with_own_caches(home.path(), &[]).unwrap();
    // Another app, deployed before: what it has stays.
    let keep = app_source("hello");
    deploy(&server, keep.path(), "keep");
    // `git/` (shared by every app's repository) exists before.
    git_request(&server, "keep");
    let before = files(home.path());

    // The doomed app shares hello.wasm with `keep` and has a module of
    // its own; it was pushed with git, deployed, configured, logged.
    let doomed = app_source("wagi-hello");
    std::fs::copy(example("hello"), doomed.path().join("hello.wasm")).unwrap();
    std::fs::write(doomed.path().join("Procfile"), "web: wagi-hello.wasm\n").unwrap();
    deploy(&server, doomed.path(), "doomed");
    let out = server.cli(doomed.path(), &["config:set", "A=1", "-a", "doomed"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = server.cli(
        doomed.path(),
        &["domains:add", "doomed.example.com", "-a", "doomed"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.get("doomed", "/").status(), 200);
    // Its git repository (made on the first git request).
    git_request(&server, "doomed");
    let during = files(home.path());
    for made in [
        "git/doomed.git",
        "logs/doomed.log",
        "cache/build",
        "slugs/unpacked",
    ] {
        assert!(
            during.iter().any(|p| p.starts_with(made)),
            "{made} missing: {during:#?}"
        );
    }
    assert!(during.len() > before.len() + 3, "{during:#?}");

    let out = server.cli(
        doomed.path(),
        &["apps:destroy", "-a", "doomed", "--confirm", "doomed"],
    );
    assert!(out.status.success(), "{}", text(&out));
    eventually(Duration::from_secs(10), || {
        let after = files(home.path());
        if after == before {
            Ok(())
        } else {
            let left: Vec<_> = after.difference(&before).collect();
            let lost: Vec<_> = before.difference(&after).collect();
            Err(format!("left behind: {left:#?}; lost: {lost:#?}"))
        }
    });
    // `keep` still runs, from the compiled code the two shared.
    assert_eq!(server.get("keep", "/").status(), 200);
    server.kill();
    let server = Server::start_with_own_caches(home.path(), &[]).unwrap();
    assert_eq!(server.get("keep", "/").status(), 200);
    assert!(!server.stderr().contains("rejected compiled code"));
}

#[test]
fn only_the_slugs_of_the_last_releases_are_kept() {
    const KEEP: usize = 10;
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let src = app_source("hello");
    for n in 1..=KEEP + 2 {
        // A different slug each time.
        std::fs::write(src.path().join("version.txt"), n.to_string()).unwrap();
        deploy(&server, src.path(), "often");
        assert!(slugs(home.path()).len() <= KEEP, "after deploy {n}");
    }
    assert_eq!(slugs(home.path()).len(), KEEP);
    let unpacked = std::fs::read_dir(home.path().join("slugs/unpacked"))
        .unwrap()
        .count();
    assert!(unpacked <= KEEP, "{unpacked} unpacked slugs");

    // v2's slug is gone: a clear refusal, and v12 keeps serving.
    let out = server.cli(src.path(), &["rollback", "v2", "-a", "often"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("its slug was removed") && text(&out).contains("last 10 releases"),
        "{}",
        text(&out)
    );
    assert_eq!(server.get("often", "/").status(), 200);
    // v3 is the oldest kept.
    let out = server.cli(src.path(), &["rollback", "v3", "-a", "often"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.get("often", "/").status(), 200);
    let releases = server.releases("often");
    assert_eq!(releases[0].description, "Rollback to v3");
    assert_eq!(releases[0].slug, releases[12 + 1 - 3].slug);
    assert_eq!(slugs(home.path()).len(), KEEP);
}

#[test]
fn uploads_and_slugs_are_capped_and_a_refusal_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    // Room for hello.wasm and a little more.
    let max_slug = (std::fs::metadata(example("hello")).unwrap().len() + (100 << 10)).to_string();
    let server = Server::start_with(
        home.path(),
        &["--max-upload-entries", "50", "--max-slug", &max_slug],
    )
    .unwrap();
    let src = app_source("hello");
    deploy(&server, src.path(), "keep");
    let releases = |app: &str| server.releases(app);
    let before = releases("keep");
    let slugs_before = slugs(home.path());

    let crowd = app_source("hello");
    for n in 0..60 {
        std::fs::write(crowd.path().join(format!("file{n}.txt")), "x").unwrap();
    }
    // A new app: refused, and the app made for the deploy is gone again.
    let out = server.cli(crowd.path(), &["deploy", "-a", "crowd"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("more than 50 entries") && said.contains("--max-upload-entries"),
        "{said}"
    );
    let apps: Vec<App> = server.cli_json(crowd.path(), &["apps", "--json"]);
    assert!(apps.iter().all(|a| a.name != "crowd"), "{apps:?}");
    // An existing app: refused, no build, no release.
    let out = server.cli(crowd.path(), &["deploy", "-a", "keep"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("more than 50 entries"),
        "{}",
        text(&out)
    );
    assert_eq!(releases("keep"), before);
    assert_eq!(slugs(home.path()), slugs_before);
    let uploads = home.path().join("tmp/uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // A build whose output is over --max-slug fails with why.
    let big = app_source("hello");
    std::fs::write(
        big.path().join("data.bin"),
        wpaas_tests::incompressible(300 << 10),
    )
    .unwrap();
    let out = server.cli(big.path(), &["deploy", "-a", "keep"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("more than this server's slug limit"),
        "{said}"
    );
    assert_eq!(server.get("keep", "/").status(), 200);
    assert_eq!(slugs(home.path()), slugs_before);
}
