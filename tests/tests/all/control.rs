//! The control plane through the real CLI against a real `wpaas server`.

use std::path::Path;

use wpaas_api::apps::{App, CreateApp};
use wpaas_api::builds::Build;
use wpaas_api::releases::ReleaseStatus;
use wpaas_api::stream::RESULT_PREFIX;
use wpaas_api::{ErrorBody, ErrorCode};
use wpaas_tests::{client, example, replicas, text, Server};

/// A source directory holding a ready hello.wasm (the wasm buildpack).
fn wasm_app(dir: &Path) {
    std::fs::copy(example("hello"), dir.join("hello.wasm")).unwrap();
}

#[test]
fn deploy_config_rollback_and_kill_9_restart() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    wasm_app(src.path());
    let server = Server::start(home.path()).unwrap();

    let out = server.cli(src.path(), &["deploy", "-a", "hello"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("-----> WebAssembly app detected"), "{log}");
    assert!(
        log.contains("Released v1: http://hello.localhost:"),
        "{log}"
    );
    assert!(server
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=unset"));

    let out = server.cli(src.path(), &["config:set", "GREETING=hola", "-a", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Setting GREETING and restarting hello... done, v2"));
    assert!(server
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=hola"));

    let out = server.cli(src.path(), &["rollback", "v1", "-a", "hello"]);
    assert!(
        text(&out).contains("Rolling back hello to v1... done, v3"),
        "{}",
        text(&out)
    );
    assert!(server
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=unset"));

    let versions: Vec<u32> = server.releases("hello").iter().map(|r| r.version).collect();
    assert_eq!(versions, [3, 2, 1]);

    // A crash loses nothing: the same home comes back serving v3.
    server.kill();
    let server = Server::start(home.path()).unwrap();
    let body = server.get("hello", "/").text().unwrap();
    assert!(body.contains("GREETING=unset"), "{body}");
    let out = server.cli(src.path(), &["config:get", "GREETING", "-a", "hello"]);
    assert!(!out.status.success(), "GREETING was rolled back away");
}

#[test]
fn api_without_token_gets_401_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let token_file = home.path().join("token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let url = format!("http://{}/apps", server.api);
    let sneaky = CreateApp {
        name: "sneaky".into(),
    };
    let denied = client().post(&url).json(&sneaky).send().unwrap();
    assert_eq!(denied.status(), 401);
    let wrong = client()
        .post(&url)
        .bearer_auth("not-the-token")
        .json(&sneaky)
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // The raw wire: an error body whose code says why.
    let body: ErrorBody = wpaas_tests::parse(&wrong.bytes().unwrap());
    assert_eq!(body.code, ErrorCode::Unauthorized, "{body:?}");
    let apps: Vec<App> = server.cli_json(home.path(), &["apps", "--json"]);
    assert!(apps.is_empty(), "nothing was made: {apps:?}");
}

#[test]
fn bad_input_is_a_clear_error_and_keeps_serving() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    wasm_app(src.path());
    let server = Server::start(home.path()).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "keep"])
        .status
        .success());

    for (args, expected) in [
        (vec!["apps:create", "Bad_Name"], "invalid app name"),
        (vec!["apps:create", "keep"], "already exists"),
        (
            vec!["config:set", "NOEQUALS", "-a", "keep"],
            "is not KEY=VALUE",
        ),
        (vec!["rollback", "v99", "-a", "keep"], "has no release v99"),
        (vec!["releases", "-a", "ghost"], "no such app"),
    ] {
        let out = server.cli(src.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }

    // An upload that is not a tar.gz is refused before any build: an
    // error body saying why, with the status its code names.
    let answer = server
        .api_request(reqwest::Method::POST, "/apps/keep/deploy")
        .body("this is not a tarball")
        .send()
        .unwrap();
    let status = answer.status().as_u16();
    let body: ErrorBody = wpaas_tests::parse(&answer.bytes().unwrap());
    assert_eq!(body.code, ErrorCode::Invalid, "{body:?}");
    assert_eq!(status, body.code.status(), "{body:?}");
    assert!(
        body.error.contains("not gzip") || body.error.contains("bad upload"),
        "{body:?}"
    );

    // A Procfile naming a missing module fails the build.
    std::fs::write(src.path().join("Procfile"), "web: missing.wasm\n").unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "keep"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("missing.wasm"), "{}", text(&out));

    assert_eq!(server.get("keep", "/").status(), 200, "v1 still serves");
}

#[test]
fn custom_heroku_contract_buildpack_deploys() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let pack = tempfile::tempdir().unwrap();
    std::fs::create_dir(pack.path().join("bin")).unwrap();
    let script = |name: &str, body: String| {
        let path = pack.path().join("bin").join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\nset -e\n{body}\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    };
    script("detect", "[ -f \"$1/app.source\" ] && echo Shell".into());
    // The build sandbox sees the buildpack (read-only), not the host.
    std::fs::copy(example("hello"), pack.path().join("hello.wasm")).unwrap();
    script(
        "compile",
        "echo '-----> Assembling app'\ncp \"$(dirname \"$0\")/../hello.wasm\" \"$1/app.wasm\""
            .into(),
    );
    script(
        "release",
        "echo '---'\necho 'default_process_types:'\necho '  web: app.wasm'".into(),
    );
    std::fs::write(src.path().join("app.source"), "source").unwrap();
    std::fs::write(
        src.path().join(".buildpacks"),
        format!("{}\n", pack.path().display()),
    )
    .unwrap();

    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "shelly"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Assembling app"), "{log}");
    assert_eq!(server.get("shelly", "/").status(), 200);

    // The same buildpack chosen with buildpacks:set instead of .buildpacks.
    std::fs::remove_file(src.path().join(".buildpacks")).unwrap();
    let out = server.cli(
        src.path(),
        &["buildpacks:set", "/no/such/pack", "-a", "shelly"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("no such directory"), "{}", text(&out));
    let pack_path = pack.path().display().to_string();
    let out = server.cli(src.path(), &["buildpacks:set", &pack_path, "-a", "shelly"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = server.cli(src.path(), &["buildpacks", "-a", "shelly"]);
    assert!(text(&out).contains(&pack_path), "{}", text(&out));
    let out = server.cli(src.path(), &["deploy", "-a", "shelly"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Released v2"), "{}", text(&out));

    // Both builds are listed, and their output kept on disk.
    let builds: Vec<Build> = server.cli_json(src.path(), &["builds", "-a", "shelly", "--json"]);
    assert_eq!(builds.len(), 2, "{builds:?}");
    let out = server.cli(src.path(), &["builds:output", "-a", "shelly"]);
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(output.contains("-----> Assembling app"), "{output}");
    assert!(output.contains("Released v2"), "{output}");
    assert!(!output.contains(RESULT_PREFIX.trim_end()), "{output}");
    let out = server.cli(src.path(), &["builds:output", "b999", "-a", "shelly"]);
    assert!(!out.status.success());
}

#[test]
fn custom_domains_route_to_their_app() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    wasm_app(src.path());
    let server = Server::start(home.path()).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "site"])
        .status
        .success());
    let by_host = |host: &str| {
        client()
            .get(format!("http://{}/", server.router))
            .header("host", host)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        by_host("www.example.test"),
        404,
        "unknown hosts are not routed"
    );

    let out = server.cli(
        src.path(),
        &["domains:add", "WWW.Example.test", "-a", "site"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(by_host("www.example.test:8080"), 200);
    let domains: Vec<String> = server.cli_json(src.path(), &["domains", "-a", "site", "--json"]);
    assert_eq!(domains, ["www.example.test"]);

    let out = server.cli(src.path(), &["apps:create", "other"]);
    assert!(out.status.success());
    let taken = server.cli(
        src.path(),
        &["domains:add", "www.example.test", "-a", "other"],
    );
    assert!(!taken.status.success());
    assert!(
        text(&taken).contains("already used by app"),
        "{}",
        text(&taken)
    );

    let out = server.cli(
        src.path(),
        &["domains:remove", "www.example.test", "-a", "site"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(by_host("www.example.test"), 404);
}

#[test]
fn failing_health_check_keeps_the_old_release_serving() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    wasm_app(src.path());
    let server = Server::start(home.path()).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "steady"])
        .status
        .success());

    // The next release's web process traps on its health check path.
    let out = server.cli(src.path(), &["healthcheck:set", "/trap", "-a", "steady"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(src.path().join("hello.wasm")).unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "steady"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("health check failed"), "{log}");

    let body = server.get("steady", "/").text().unwrap();
    assert!(
        body.contains("Hello from wpaas!"),
        "v1 still serves: {body}"
    );
    let releases = server.releases("steady");
    assert_eq!(releases[0].version, 2);
    assert!(
        matches!(releases[0].status, ReleaseStatus::Failed { .. }),
        "{releases:?}"
    );
    assert_eq!(releases[1].status, ReleaseStatus::Succeeded);
}

#[test]
fn ps_scale_balances_replicas_and_survives_restart() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    let server = Server::start(home.path()).unwrap();
    let cli = |server: &Server, args: &[&str]| {
        let out = server.cli(src.path(), args);
        (out.status.success(), text(&out))
    };
    let (ok, log) = cli(&server, &["deploy", "-a", "busy"]);
    assert!(ok, "{log}");

    let (ok, ps) = cli(&server, &["ps", "-a", "busy"]);
    assert!(ok, "{ps}");
    assert!(ps.contains("=== web (1): hostile.wasm"), "{ps}");
    assert!(ps.contains("web.1: up"), "{ps}");

    let (ok, out) = cli(&server, &["ps:scale", "web=4", "-a", "busy"]);
    assert!(ok, "{out}");
    assert!(out.contains("now running web at 4"), "{out}");
    let (_, ps) = cli(&server, &["ps", "-a", "busy"]);
    for n in 1..=4 {
        assert!(ps.contains(&format!("web.{n}: up")), "{ps}");
    }

    let served = |server: &Server| -> u64 {
        replicas(&server.ps("busy"), "web")
            .iter()
            .map(|r| r.served.expect("web replicas count what they served"))
            .sum()
    };
    let served_before = served(&server);

    // Eight slow requests at once spread over the four replicas (each
    // answers with its DYNO), instead of piling onto one.
    let router = server.router;
    let bodies: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    client()
                        .get(format!("http://{router}/sleep?ms=500"))
                        .header("host", "busy.localhost")
                        .send()
                        .unwrap()
                        .text()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut dynos: Vec<&str> = bodies
        .iter()
        .map(|b| b.rsplit(' ').next().unwrap().trim())
        .collect();
    dynos.sort();
    dynos.dedup();
    assert_eq!(dynos, ["web.1", "web.2", "web.3", "web.4"], "{bodies:?}");
    assert_eq!(served(&server) - served_before, 8);

    // Bad input changes nothing.
    for bad in [&["ps:scale", "worker=2"][..], &["ps:scale", "web=lots"]] {
        let (ok, out) = cli(&server, &[bad, &["-a", "busy"]].concat());
        assert!(!ok, "{out}");
        assert!(out.starts_with("error: "), "{out}");
    }
    let (_, out) = cli(&server, &["ps:scale", "worker=2", "-a", "busy"]);
    assert!(out.contains("no process type \"worker\""), "{out}");

    // web=0: the router answers 503 (H14); back to 2, it serves again.
    assert!(cli(&server, &["ps:scale", "web=0", "-a", "busy"]).0);
    assert_eq!(server.get("busy", "/sleep?ms=1").status(), 503);
    assert!(cli(&server, &["ps:scale", "web=2", "-a", "busy"]).0);
    assert_eq!(server.get("busy", "/sleep?ms=1").status(), 200);
    let (ok, out) = cli(&server, &["ps:restart", "web", "-a", "busy"]);
    assert!(
        ok && out.contains("Restarting web processes of busy... done"),
        "{out}"
    );

    // The formation is durable.
    server.kill();
    let server = Server::start(home.path()).unwrap();
    let (_, ps) = cli(&server, &["ps", "-a", "busy"]);
    assert!(ps.contains("=== web (2)"), "{ps}");
    assert!(ps.contains("web.2: up") && !ps.contains("web.3"), "{ps}");
    assert_eq!(server.get("busy", "/sleep?ms=1").status(), 200);
}

#[test]
fn the_app_reads_its_own_files_read_only_and_nothing_else() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    std::fs::create_dir(src.path().join("static")).unwrap();
    std::fs::write(src.path().join("static/hello.txt"), "hello from a file\n").unwrap();
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "filer"]);
    assert!(out.status.success(), "{}", text(&out));
    let get = |path: &str| {
        let response = server.get("filer", path);
        (response.status().as_u16(), response.text().unwrap())
    };

    // Relative to the working directory, and under /app.
    for path in ["static/hello.txt", "/app/static/hello.txt"] {
        assert_eq!(
            get(&format!("/file?path={path}")),
            (200, "hello from a file\n".to_string()),
            "{path}"
        );
    }
    // Nothing outside the app's files, and nothing can be written.
    let (status, body) = get("/file?path=/etc/passwd");
    assert_eq!(status, 404, "{body}");
    let home_file = home.path().join("token").display().to_string();
    assert_eq!(get(&format!("/file?path={home_file}")).0, 404);
    assert_eq!(get("/file?path=../../token").0, 404);
    for path in ["static/new.txt", "/app/new.txt", "/tmp/new.txt"] {
        let (status, body) = get(&format!("/write?path={path}"));
        assert_eq!(status, 403, "{path}: {body}");
    }
    assert!(!src.path().join("static/new.txt").exists());
}
