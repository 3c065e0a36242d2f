//! The verbs a Heroku user reaches for, run as a user would, their output
//! pinned by golden transcripts (tests/golden/cli_*.txt; filters in
//! tests/src/golden.rs; `WPAAS_BLESS=1` rewrites them).

use std::path::Path;
use std::process::Command;

use wpaas_tests::golden::Transcript;
use wpaas_tests::{example, output_with_stdin, text, Server};

/// A server with `hello` deployed as app `name` from `src`.
fn deployed(home: &Path, src: &Path, name: &str) -> Server {
    std::fs::copy(example("hello"), src.join("hello.wasm")).unwrap();
    let server = Server::start(home).unwrap();
    server.ok(src, &["deploy", "-a", name]);
    server
}

#[test]
fn config_vars_from_a_file_to_a_file_and_through_an_editor() {
    let (home, src) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = deployed(home.path(), src.path(), "cfg");
    let mut t = Transcript::new("cli_config");
    t.redact_server(&server);
    let dir = src.path();
    std::fs::write(
        dir.join(".env"),
        "# local settings\nexport GREETING=\"hello there\"\nDATABASE_URL=postgres://u@db:5432/x\nEMPTY=\n",
    )
    .unwrap();
    t.ok(
        &server,
        dir,
        &["config:set", "--file", ".env", "MODE=prod", "-a", "cfg"],
    );
    t.ok(&server, dir, &["config", "-a", "cfg"]);
    t.ok(&server, dir, &["config", "--shell", "-a", "cfg"]);
    // The .env a user gets back reads as it was written.
    let shell = server.ok(dir, &["config", "-s", "-a", "cfg"]);
    assert!(shell.contains("GREETING='hello there'\n"), "{shell}");

    std::fs::write(dir.join("local.env"), "MODE=dev\nLOCAL_ONLY=1\n").unwrap();
    t.ok(
        &server,
        dir,
        &["config:pull", "--file", "local.env", "-a", "cfg"],
    );
    let pulled = std::fs::read_to_string(dir.join("local.env")).unwrap();
    assert!(
        pulled.contains("MODE=dev\n") && pulled.contains("LOCAL_ONLY=1\n"),
        "{pulled}"
    );
    assert!(
        pulled.contains("DATABASE_URL=postgres://u@db:5432/x\n"),
        "{pulled}"
    );
    t.ok(
        &server,
        dir,
        &[
            "config:pull",
            "--file",
            "local.env",
            "--overwrite",
            "-a",
            "cfg",
        ],
    );
    let pulled = std::fs::read_to_string(dir.join("local.env")).unwrap();
    assert!(pulled.contains("MODE=prod\n"), "{pulled}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("local.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "config vars are secrets: {mode:o}");

    // config:edit: a real editor process changes one var and removes one;
    // both land in one release.
    let edit = ["config:edit", "-a", "cfg"];
    let editor = |script: &str| {
        let mut command = server.command(dir, &edit);
        command.env("EDITOR", script).env_remove("VISUAL");
        command.output().unwrap()
    };
    let releases_before = server.releases("cfg").len();
    let out = editor("sed -i -e s/^MODE=prod/MODE=staging/ -e /^EMPTY=/d");
    t.record(&edit, &out);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.releases("cfg").len(), releases_before + 1);
    let out = editor("true");
    t.record(&edit, &out);
    assert_eq!(
        server.releases("cfg").len(),
        releases_before + 1,
        "no change, no release"
    );
    let out = editor("sh -c 'echo not-a-pair >> \"$0\"'");
    t.record(&edit, &out);
    assert!(!out.status.success());
    let out = editor("false");
    t.record(&edit, &out);
    assert!(!out.status.success());
    assert_eq!(server.releases("cfg").len(), releases_before + 1);
    t.ok(&server, dir, &["config", "-a", "cfg"]);

    std::fs::write(dir.join("bad.env"), "A=1\nB='open\n").unwrap();
    t.fails(
        &server,
        dir,
        &["config:set", "--file", "bad.env", "-a", "cfg"],
    );
    t.fails(&server, dir, &["config:set", "-a", "cfg"]);
    t.check();
}

#[test]
fn limits_health_check_and_domains_show_set_and_reset() {
    let (home, src) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = deployed(home.path(), src.path(), "lim");
    let mut t = Transcript::new("cli_limits");
    t.redact_server(&server);
    let dir = src.path();
    t.ok(&server, dir, &["ps:limits", "-a", "lim"]);
    t.ok(
        &server,
        dir,
        &["ps:limits", "web", "--memory", "256M", "-a", "lim"],
    );
    // A second flag changes only its own limit.
    t.ok(
        &server,
        dir,
        &["ps:limits", "web", "--timeout", "5s", "-a", "lim"],
    );
    t.ok(&server, dir, &["ps:limits", "web", "-a", "lim"]);
    t.ok(&server, dir, &["ps:limits", "web", "--json", "-a", "lim"]);
    t.fails(
        &server,
        dir,
        &["ps:limits", "wbe", "--memory", "64M", "-a", "lim"],
    );
    t.fails(&server, dir, &["ps:limits", "wbe", "-a", "lim"]);
    t.ok(&server, dir, &["ps:limits", "web", "--reset", "-a", "lim"]);
    t.ok(&server, dir, &["ps:limits", "-a", "lim"]);

    t.ok(&server, dir, &["healthcheck", "-a", "lim"]);
    t.ok(
        &server,
        dir,
        &["healthcheck:set", "/health", "--timeout", "2s", "-a", "lim"],
    );
    // A path alone returns to the default timeout, not the last one.
    t.ok(&server, dir, &["healthcheck:set", "/", "-a", "lim"]);
    t.fails(
        &server,
        dir,
        &["healthcheck:set", "/", "--timeout", "0s", "-a", "lim"],
    );
    t.ok(&server, dir, &["healthcheck:set", "--off", "-a", "lim"]);
    t.ok(&server, dir, &["healthcheck", "-a", "lim"]);

    t.ok(
        &server,
        dir,
        &["domains:add", "www.example.com", "-a", "lim"],
    );
    t.ok(
        &server,
        dir,
        &["domains:add", "api.example.com", "-a", "lim"],
    );
    t.ok(&server, dir, &["domains", "-a", "lim"]);
    t.ok(&server, dir, &["domains:clear", "-a", "lim"]);
    t.ok(&server, dir, &["domains", "--json", "-a", "lim"]);
    // A cleared domain is free for another app.
    server.ok(dir, &["apps:create", "other"]);
    t.ok(
        &server,
        dir,
        &["domains:add", "www.example.com", "-a", "other"],
    );
    t.check();
}

#[test]
fn which_app_and_which_server_say_where_they_came_from() {
    let (home, src) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = deployed(home.path(), src.path(), "whoapp");
    let mut t = Transcript::new("cli_which");
    t.redact_server(&server);
    // A directory whose name is no app: the error says where the name
    // came from. (Named so, the transcript does not depend on the temp
    // directory's random name.)
    let nowhere = src.path().join("not-an-app");
    std::fs::create_dir(&nowhere).unwrap();
    t.fails(&server, &nowhere, &["ps"]);
    // An -a that is wrong is only wrong.
    t.fails(&server, &nowhere, &["ps", "-a", "nosuch"]);
    // -r takes the app from a git remote.
    let repo = src.path().join("checkout");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    let url = format!("http://{}/git/whoapp.git", server.api);
    git(&["remote", "add", "staging", &url]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://example.com/someone/else.git",
    ]);
    t.ok(&server, &repo, &["releases", "-r", "staging"]);
    t.fails(&server, &repo, &["releases", "-r", "origin"]);
    t.fails(&server, &repo, &["releases", "-r", "nothere"]);
    t.fails(
        &server,
        &repo,
        &["releases", "-r", "staging", "-a", "whoapp"],
    );
    // logs --ps names something that logs, or says what does.
    t.fails(&server, &repo, &["logs", "--ps", "bogus", "-r", "staging"]);
    t.ok(
        &server,
        &repo,
        &["logs", "--ps", "web.1", "-n", "0", "-r", "staging"],
    );

    t.ok(&server, &repo, &["auth:whoami"]);
    t.ok(&server, &repo, &["auth:whoami", "--json"]);
    let mut wrong = server.command(&repo, &["auth:whoami"]);
    wrong.env("WPAAS_TOKEN", "not-the-token");
    let out = wrong.output().unwrap();
    assert!(!out.status.success());
    t.record(&["auth:whoami", "# with WPAAS_TOKEN=not-the-token"], &out);

    // login checks the token before it saves anything.
    let login = |token: &str| {
        let api = format!("http://{}", server.api);
        output_with_stdin(&mut server.command(&repo, &["login", &api]), token)
    };
    let credentials = server.home.join("credentials.json");
    let out = login("wrong-token\n");
    assert!(!out.status.success());
    assert!(!credentials.exists(), "a refused token is not saved");
    t.record(&["login", "[API]", "# < wrong token"], &out);
    let out = login(&server.token());
    assert!(out.status.success(), "{}", text(&out));
    assert!(credentials.exists());
    t.record(&["login", "[API]", "# < the right token"], &out);
    t.ok(&server, &repo, &["auth:whoami"]);
    t.ok(&server, &repo, &["logout"]);
    assert!(!credentials.exists(), "logout forgets the saved login");
    t.ok(&server, &repo, &["auth:logout"]);
    t.ok(&server, &repo, &["auth:whoami"]);
    t.check();
}

#[test]
fn colour_only_for_a_terminal_and_never_under_no_color() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let dir = home.path();
    // A pipe: plain text.
    let out = server.cli(dir, &["ps", "-a", "nosuch"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
    // A terminal (script(1) gives the command a pty): coloured, unless
    // NO_COLOR is set.
    let on_a_terminal = |no_color: Option<&str>| {
        let mut command = Command::new("script");
        command
            .args([
                "-qec",
                &format!("{} ps -a nosuch", wpaas_tests::wpaas_bin().display()),
            ])
            .arg("/dev/null")
            .env("WPAAS_HOME", &server.home)
            .env("WPAAS_API", format!("http://{}", server.api))
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_a_terminal(None);
    assert!(
        coloured.contains("\x1b[1;31merror:\x1b[0m no such app"),
        "{coloured:?}"
    );
    let plain = on_a_terminal(Some("1"));
    assert!(plain.contains("error: no such app"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

#[test]
fn every_command_that_prints_has_json_with_the_apis_shape() {
    use serde_json::Value;
    let (home, src) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = deployed(home.path(), src.path(), "js");
    let dir = src.path();
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--json"]);
        let out = server.cli(dir, &all);
        assert!(out.status.success(), "{all:?}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{all:?} printed more than JSON ({e}): {stdout}"))
    };
    // Reads print the API's answer as it is.
    for (args, path) in [
        (&["apps"][..], "/apps"),
        (&["apps:info", "-a", "js"], "/apps/js"),
        (&["config", "-a", "js"], "/apps/js/config"),
        (&["releases", "-a", "js"], "/apps/js/releases"),
        (&["releases:info", "v1", "-a", "js"], "/apps/js/releases/v1"),
        (&["domains", "-a", "js"], "/apps/js/domains"),
        (&["healthcheck", "-a", "js"], "/apps/js/healthcheck"),
        (&["builds", "-a", "js"], "/apps/js/builds"),
        (&["kv", "-a", "js"], "/apps/js/kv"),
        (&["buildpacks", "-a", "js"], "/apps/js/buildpack"),
    ] {
        assert_eq!(json(args), server.api_get::<Value>(path), "{args:?}");
    }
    // Changes print what the API answered: the release, the formation, …
    let release = json(&["config:set", "A=1", "-a", "js"]);
    assert_eq!(release["version"], 2, "{release}");
    assert_eq!(release["config"]["A"], "1", "{release}");
    assert_eq!(
        json(&["config:get", "A", "-a", "js"]),
        serde_json::json!("1")
    );
    let ps = json(&["ps:scale", "web=2", "-a", "js"]);
    assert_eq!(ps[0]["type"], "web", "{ps}");
    assert_eq!(ps[0]["quantity"], 2, "{ps}");
    let back = json(&["rollback", "-a", "js"]);
    assert_eq!(back["rolled_back_to"], 1, "{back}");
    assert_eq!(
        json(&["domains:add", "j.example.com", "-a", "js"]),
        serde_json::json!(["j.example.com"])
    );
    assert_eq!(json(&["domains:clear", "-a", "js"]), serde_json::json!([]));
    let limits = json(&["ps:limits", "web", "--memory", "64M", "-a", "js"]);
    assert_eq!(limits["memory_bytes"], 64 << 20, "{limits}");
    assert_eq!(
        json(&["ps:limits", "web", "--reset", "-a", "js"]),
        serde_json::json!({})
    );
    assert_eq!(json(&["ps", "-a", "js"])[0]["type"], "web");
    assert_eq!(json(&["auth:whoami"])["token_source"], "server_home");
    assert_eq!(
        json(&["new", "made", "--template", "wagi"])["template"],
        "wagi"
    );
    assert!(json(&["new", "--list"])
        .as_array()
        .is_some_and(|t| !t.is_empty()));
}
