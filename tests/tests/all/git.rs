//! `git push` deploys, with the real `git` client against a real server:
//! the git remote and credentials set up by `apps:create`/`git:remote`,
//! deploys that serve, failed builds and other branches that are refused,
//! pushes without the token or to unknown apps, commits built before
//! released without rebuilding, and concurrent pushes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use std::time::Duration;

use wpaas_api::builds::Build;
use wpaas_api::releases::Release;

use wpaas_tests::{client, eventually, incompressible, text, workspace_root, Server};

/// A WAGI module in WAT answering `TEXT` (the data line is the one a test
/// edits). It first counts to `spin`, to make its health check slow.
fn wat(text: &str, spin: u32) -> String {
    wagi(&format!("Content-Type: text/plain\n\n{text}\n"), spin)
}

/// A WAGI module in WAT writing the CGI `response`, after counting to `spin`.
fn wagi(response: &str, spin: u32) -> String {
    let len = response.len();
    let response = response.replace('\n', "\\n");
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{response}")
  (func (export "_start")
    (local $i i32)
    (block $done
      (loop $spin
        (br_if $done (i32.ge_u (local.get $i) (i32.const {spin})))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $spin)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#
    )
}

/// A git work tree with its own HOME (no user or system git config), whose
/// `git` and `wpaas` commands talk to `server`.
struct Repo<'a> {
    server: &'a Server,
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl<'a> Repo<'a> {
    fn init(server: &'a Server) -> Self {
        let repo = Self {
            server,
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        repo.ok(&["init", "-q", "--initial-branch=main"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        self.server.git(self.path(), self.home.path(), args)
    }

    fn git(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `git ARGS` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.git(args);
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wpaas(&self, args: &[&str]) -> Output {
        self.server.cli(self.path(), args)
    }

    fn write(&self, file: &str, contents: &str) {
        let path = self.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Commits everything; the new commit's id.
    fn commit(&self, message: &str) -> String {
        self.ok(&["add", "-A"]);
        self.ok(&["commit", "-q", "--allow-empty", "-m", message]);
        self.ok(&["rev-parse", "HEAD"])
    }

    fn push(&self, args: &[&str]) -> Output {
        let mut all = vec!["push"];
        all.extend_from_slice(args);
        self.git(&all)
    }
}

fn body(server: &Server, app: &str) -> String {
    server.get(app, "/").text().unwrap()
}

fn release_descriptions(server: &Server, app: &str) -> Vec<String> {
    server
        .api_get::<Vec<Release>>(&format!("/apps/{app}/releases"))
        .iter()
        .map(|r| format!("v{} {} {}", r.version, r.description, r.status.as_str()))
        .collect()
}

fn build_count(server: &Server, app: &str) -> usize {
    server
        .api_get::<Vec<Build>>(&format!("/apps/{app}/builds"))
        .len()
}

#[test]
fn git_push_deploys_refuses_and_releases_old_commits_without_rebuilding() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let token = std::fs::read_to_string(home.path().join("token")).unwrap();
    let repo = Repo::init(&server);
    repo.write("app.wat", &wat("hello v1", 0));
    let v1 = repo.commit("v1");

    // apps:create in a work tree adds the remote and its credential helper.
    let out = repo.wpaas(&["apps:create", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    let url = format!("http://{}/git/hello.git", server.api);
    assert!(
        text(&out).contains(&format!("Git remote wpaas set to {url}")),
        "{}",
        text(&out)
    );
    assert_eq!(repo.ok(&["remote", "get-url", "wpaas"]), url);

    // First push: built live, released, serving.
    let out = repo.push(&["wpaas", "main"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("remote: -----> WebAssembly app detected"),
        "{log}"
    );
    assert!(
        log.contains("remote: -----> Released v1: http://hello.localhost:"),
        "{log}"
    );
    assert!(!log.contains(token.trim()), "the token was printed: {log}");
    assert_eq!(body(&server, "hello"), "hello v1\n");
    assert_eq!(server.releases("hello")[0].by.as_deref(), Some("git"));

    // A one-line change.
    let source = std::fs::read_to_string(repo.path().join("app.wat")).unwrap();
    repo.write("app.wat", &source.replace("hello v1", "hello v2"));
    let v2 = repo.commit("v2");
    let out = repo.push(&["wpaas", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(body(&server, "hello"), "hello v2\n");

    // A failing build rejects the push: the branch and the app stay on v2.
    repo.write("app.wat", "(module (func $broken");
    repo.commit("broken");
    let out = repo.push(&["wpaas", "main"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("pre-receive hook declined"), "{log}");
    assert!(log.contains("remote:  !     app.wat"), "{log}");
    assert!(log.contains("keeps serving its current release"), "{log}");
    assert_eq!(body(&server, "hello"), "hello v2\n");

    // So does a release that fails its health check.
    repo.write(
        "app.wat",
        &wagi("Status: 500 Internal Server Error\n\nunhealthy\n", 0),
    );
    let unhealthy = repo.commit("unhealthy");
    let out = repo.push(&["wpaas", "main"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("health check failed: GET / answered 500"),
        "{log}"
    );
    assert!(log.contains("pre-receive hook declined"), "{log}");
    assert_eq!(body(&server, "hello"), "hello v2\n");
    let remote_main = repo.ok(&["ls-remote", "wpaas", "refs/heads/main"]);
    assert!(remote_main.starts_with(&v2), "{remote_main}");
    repo.ok(&["reset", "-q", "--hard", &v2]);

    // Only main and master deploy.
    let out = repo.push(&["wpaas", "main:feature"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("Refusing refs/heads/feature: only main or master deploy to hello"),
        "{log}"
    );
    assert!(repo
        .ok(&["ls-remote", "wpaas", "refs/heads/feature"])
        .is_empty());

    // Force-pushing an older commit deploys it (a rollback through git), and
    // as it was built before, its slug is released without a rebuild.
    let builds = build_count(&server, "hello");
    let out = repo.push(&["--force", "wpaas", &format!("{v1}:main")]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("Commit {} was built before (build b", &v1[..7])),
        "{log}"
    );
    assert!(
        log.contains("releasing its slug without rebuilding"),
        "{log}"
    );
    assert!(!log.contains("WebAssembly app detected"), "{log}");
    assert_eq!(body(&server, "hello"), "hello v1\n");
    // Pushing the same commit to master (a branch that did not exist) again
    // reuses it too.
    let out = repo.push(&["wpaas", &format!("{v2}:refs/heads/master")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("without rebuilding"), "{}", text(&out));
    assert_eq!(body(&server, "hello"), "hello v2\n");
    assert_eq!(build_count(&server, "hello"), builds, "nothing was rebuilt");

    // Releases are described by the commit; the failed build made none, the
    // unhealthy release is recorded as failed.
    assert_eq!(
        release_descriptions(&server, "hello"),
        [
            format!("v5 Deploy {} succeeded", &v2[..7]),
            format!("v4 Deploy {} succeeded", &v1[..7]),
            format!("v3 Deploy {} failed", &unhealthy[..7]),
            format!("v2 Deploy {} succeeded", &v2[..7]),
            format!("v1 Deploy {} succeeded", &v1[..7]),
        ]
    );
}

#[test]
fn git_push_without_the_token_or_to_an_unknown_app_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let repo = Repo::init(&server);
    repo.write("app.wat", &wat("hello", 0));
    repo.commit("v1");
    let out = repo.wpaas(&["apps:create", "guarded"]);
    assert!(out.status.success(), "{}", text(&out));

    // No credentials at all: 401 with a Basic challenge, so git asks for them.
    let info_refs = format!(
        "http://{}/git/guarded.git/info/refs?service=git-receive-pack",
        server.api
    );
    let response = client().get(&info_refs).send().unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"wpaas\""
    );
    let url = format!("http://{}/git/guarded.git", server.api);
    let stranger = Repo::init(&server);
    stranger.commit("empty");
    let out = stranger.push(&[&url, "main"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("terminal prompts disabled"), "{log}");

    // A wrong token (what the credential helper finds in WPAAS_TOKEN).
    let out = repo
        .command(&["push", "wpaas", "main"])
        .env("WPAAS_TOKEN", "not-the-token")
        .output()
        .unwrap();
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("Authentication failed"), "{log}");
    assert!(log.contains("missing or invalid API token"), "{log}");
    assert_eq!(server.app_info("guarded").release, None);

    // An app that does not exist.
    let nope = format!("http://{}/git/nope.git", server.api);
    let out = repo.push(&[&nope, "main"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("no such app \"nope\"; create it with `wpaas apps:create nope`"),
        "{log}"
    );

    // git:remote sets up another remote the same way, and it deploys.
    let out = repo.wpaas(&["git:remote", "-a", "guarded", "-r", "prod"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = repo.push(&["prod", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(body(&server, "guarded"), "hello\n");
}

#[test]
fn concurrent_pushes_deploy_one_at_a_time() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let first = Repo::init(&server);
    first.write("app.wat", &wat("base", 0));
    first.commit("base");
    assert!(first.wpaas(&["apps:create", "busy"]).status.success());
    assert!(first.push(&["wpaas", "main"]).status.success());
    let second = Repo::init(&server);
    assert!(second.wpaas(&["git:remote", "-a", "busy"]).status.success());
    second.ok(&["pull", "-q", "wpaas", "main"]);

    // The first push's release answers its health check slowly; the second
    // push starts while it is being deployed, from the same base.
    first.write("app.wat", &wat("first", 400_000_000));
    let winner = first.commit("first");
    second.write("app.wat", &wat("second", 0));
    second.commit("second");
    let mut pushing = first
        .command(&["push", "wpaas", "main"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_log = String::new();
    let mut lines = BufReader::new(pushing.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        first_log.push_str(&line);
        first_log.push('\n');
        if line.contains("-----> Loading web") {
            break;
        }
    }
    let out = second.push(&["wpaas", "main"]);
    for line in lines {
        first_log.push_str(&line.unwrap());
        first_log.push('\n');
    }
    assert!(pushing.wait().unwrap().success(), "{first_log}");

    // The second push waited, then found main moved: refused, not deployed.
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("refs/heads/main moved while you pushed"),
        "{log}"
    );
    assert_eq!(body(&server, "busy"), "first\n");
    let remote_main = first.ok(&["ls-remote", "wpaas", "refs/heads/main"]);
    assert!(remote_main.starts_with(&winner), "{remote_main}");
    assert_eq!(release_descriptions(&server, "busy").len(), 2);

    // A `wpaas deploy` during a push waits for it, and says so.
    first.write("app.wat", &wat("first again", 400_000_000));
    first.commit("again");
    let mut pushing = first
        .command(&["push", "wpaas", "main"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(pushing.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("-----> Loading web") {
            break;
        }
    }
    let upload = tempfile::tempdir().unwrap();
    std::fs::write(upload.path().join("app.wat"), wat("uploaded", 0)).unwrap();
    let out = server.cli(upload.path(), &["deploy", "-a", "busy"]);
    lines.for_each(drop);
    assert!(pushing.wait().unwrap().success());
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("-----> Waiting for another deploy of busy to finish..."),
        "{log}"
    );
    assert_eq!(body(&server, "busy"), "uploaded\n");
}

/// examples/hello copied out as a standalone repository, as is: it
/// depends on `wpaas-sdk = "0.1"`, which the builder supplies (nothing
/// outside the repository is needed).
fn hello_crate(repo: &Repo) {
    let from = workspace_root().join("examples/hello");
    for file in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        repo.write(file, &std::fs::read_to_string(from.join(file)).unwrap());
    }
    repo.write(".gitignore", "/target\n");
}

#[test]
fn git_push_of_a_rust_app_reuses_the_build_cache() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let repo = Repo::init(&server);
    hello_crate(&repo);
    repo.commit("hello");
    assert!(repo.wpaas(&["apps:create", "hello"]).status.success());

    // The first push: its dependencies may be built already, by an earlier
    // run or by source.rs's deploy of examples/hello, also an app named
    // `hello`, in the shared build cache (target/e2e-cache/build/hello).
    let out = repo.push(&["wpaas", "main"]);
    let cold = text(&out);
    assert!(out.status.success(), "{cold}");
    assert!(cold.contains("Compiling hello"), "{cold}");
    assert!(body(&server, "hello").contains("Hello from wpaas!"));

    let main = std::fs::read_to_string(repo.path().join("src/main.rs")).unwrap();
    repo.write(
        "src/main.rs",
        &main.replace("Hello from wpaas!", "Hello from git!"),
    );
    repo.commit("greeting");
    let out = repo.push(&["wpaas", "main"]);
    let warm = text(&out);
    assert!(out.status.success(), "{warm}");
    // Only the app is compiled again; its dependencies from crates.io and
    // the platform's SDK are cached.
    assert!(warm.contains("Compiling hello"), "{warm}");
    assert!(!warm.contains("Compiling wpaas-sdk"), "{warm}");
    assert!(!warm.contains("Compiling serde "), "{warm}");
    assert!(!warm.contains("Downloaded"), "{warm}");
    assert!(body(&server, "hello").contains("Hello from git!"));
}

/// The bare repository's quarantine directories (objects of unfinished
/// pushes).
fn quarantined(server: &Server, app: &str) -> Vec<String> {
    let objects = server.home.join("git").join(format!("{app}.git/objects"));
    std::fs::read_dir(objects)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("tmp_objdir"))
        .collect()
}

#[test]
fn a_push_over_the_upload_limit_is_refused_and_leaves_nothing() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), &["--max-upload", "200K"]).unwrap();
    let repo = Repo::init(&server);
    repo.write("app.wat", &wat("small", 0));
    repo.commit("v1");
    let out = repo.wpaas(&["apps:create", "capped"]);
    assert!(out.status.success(), "{}", text(&out));
    let small = repo.ok(&["rev-parse", "HEAD"]);

    // 300 KB (sent with a Content-Length) and 1.5 MB (sent chunked: over
    // git's 1 MiB post buffer): both stopped, the branch never moves.
    for (name, len) in [("mid.bin", 300_000), ("big.bin", 1_500_000)] {
        std::fs::write(repo.path().join(name), incompressible(len)).unwrap();
        repo.commit(name);
        let out = repo.push(&["wpaas", "main"]);
        let log = text(&out);
        assert!(!out.status.success(), "{log}");
        assert!(
            log.contains("this push is larger than the server's limit of 200 KiB (wpaas server --max-upload); nothing was changed"),
            "{log}"
        );
        assert!(quarantined(&server, "capped").is_empty(), "{log}");
        assert!(repo.ok(&["ls-remote", "wpaas"]).is_empty());
        assert_eq!(server.app_info("capped").release, None);
        repo.ok(&["reset", "-q", "--hard", "HEAD~1"]);
    }

    // A push within the limit deploys (the push lock was let go).
    assert_eq!(repo.ok(&["rev-parse", "HEAD"]), small);
    let out = repo.push(&["wpaas", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(body(&server, "capped"), "small\n");

    // `wpaas deploy` has the same limit.
    let big = tempfile::tempdir().unwrap();
    std::fs::write(big.path().join("app.wat"), wat("big", 0)).unwrap();
    std::fs::write(big.path().join("data.bin"), incompressible(400_000)).unwrap();
    let out = server.cli(big.path(), &["deploy", "-a", "capped"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("the upload is larger than this server's limit of 200 KiB"),
        "{log}"
    );
    assert_eq!(body(&server, "capped"), "small\n");
}

#[test]
fn a_small_push_over_a_small_limit_says_why() {
    // Stopped before http-backend answered anything: the pusher still
    // reads the reason, not git's `RPC failed; HTTP 413`.
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), &["--max-upload", "50K"]).unwrap();
    let repo = Repo::init(&server);
    repo.write("app.wat", &wat("small", 0));
    std::fs::write(repo.path().join("data.bin"), incompressible(60_000)).unwrap();
    repo.commit("v1");
    let out = repo.wpaas(&["apps:create", "tiny"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = repo.push(&["wpaas", "main"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("remote: wpaas: this push is larger than the server's limit of 50 KiB (wpaas server --max-upload); nothing was changed"),
        "{log}"
    );
    assert!(!log.contains("HTTP 413"), "{log}");
    assert!(!log.contains("Everything up-to-date"), "{log}");
    assert!(repo.ok(&["ls-remote", "wpaas"]).is_empty());
}

#[test]
fn a_push_whose_client_goes_away_still_releases_and_moves_the_branch() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let repo = Repo::init(&server);
    repo.write("app.wat", &wat("one", 0));
    repo.write("Procfile", "web: app.wasm\n");
    repo.commit("v1");
    let out = repo.wpaas(&["apps:create", "leaver"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = repo.push(&["wpaas", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(body(&server, "leaver"), "one\n");

    // A buildpack that waits for a `go` file in its cache, so the pusher
    // can leave mid-build.
    let go = server.build_cache("leaver").join("go");
    let _ = std::fs::remove_file(&go);
    let pack = tempfile::tempdir().unwrap();
    let bin = pack.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, script) in [
        ("detect", "echo Slow"),
        (
            "compile",
            "echo '-----> Taking my time'; while [ ! -e \"$2/go\" ]; do sleep 0.05; done",
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    repo.write(".buildpacks", &format!("{}\n", pack.path().display()));
    // It compiles nothing: the commit carries the ready module.
    std::fs::remove_file(repo.path().join("app.wat")).unwrap();
    let module = wat::parse_str(wat("two", 0)).unwrap();
    std::fs::write(repo.path().join("app.wasm"), module).unwrap();
    let two = repo.commit("v2");

    // git and its HTTP helper in a process group of their own, killed
    // together once the build has started.
    let mut push = repo.command(&["push", "--progress", "wpaas", "main"]);
    std::os::unix::process::CommandExt::process_group(&mut push, 0);
    let mut push = push.stderr(Stdio::piped()).spawn().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(push.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("Taking my time") {
            break;
        }
    }
    assert!(seen.contains("Taking my time"), "{seen}");
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", push.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = push.wait();
    std::fs::write(&go, "").unwrap();

    // The push completes on the server: released, and the branch moved.
    eventually(Duration::from_secs(30), || {
        let branch = repo.ok(&["ls-remote", "wpaas", "refs/heads/main"]);
        let serving = body(&server, "leaver");
        if branch.starts_with(&two) && serving == "two\n" {
            Ok(())
        } else {
            Err(format!(
                "branch {branch:?}, serving {serving:?}\n{}",
                server.stderr()
            ))
        }
    });
}
