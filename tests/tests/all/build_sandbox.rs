//! Builds run in a sandbox: a hostile custom buildpack and a hostile
//! `build.rs` try to read the API token, another app's config, WPAAS_HOME,
//! the server's environment, to write outside their build, to reach the
//! API, and to leave a process behind. Each attempt fails, and the build
//! still produces a working slug.

use std::path::{Path, PathBuf};

use wpaas_api::builds::Build;
use wpaas_tests::{example, shared_cache_dir, text, Server};

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Processes whose command line is exactly `sleep 300`.
fn sleepers() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x00300\x00")
        })
        .collect()
}

/// The server's `~/.cargo/registry` (the shared crate cache).
fn host_registry() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"))
        .join("registry")
}

/// A server with app "victim" deployed and configured with a secret.
fn server_with_victim(home: &Path) -> (Server, String, String) {
    let server = Server::start(home).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "victim"]);
    assert!(out.status.success(), "{}", text(&out));
    let secret = format!("victim-secret-{}", std::process::id());
    let out = server.cli(
        src.path(),
        &[
            "config:set",
            &format!("DB_PASSWORD={secret}"),
            "-a",
            "victim",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let token = std::fs::read_to_string(home.join("token"))
        .unwrap()
        .trim()
        .to_string();
    assert!(token.len() >= 16);
    (server, token, secret)
}

/// Every attack the hostile script reported must have failed.
fn assert_attacks_failed(log: &str, attacks: &[&str]) {
    for attack in attacks {
        assert!(
            log.contains(&format!("ATTACK {attack}: failed")),
            "attack {attack} did not fail:\n{log}"
        );
    }
}

/// What must hold on the host after a hostile build.
fn assert_host_untouched(home: &Path, log: &str, token: &str, secret: &str, before: &[u32]) {
    assert!(!log.contains(token), "the API token leaked:\n{log}");
    assert!(!log.contains(secret), "the victim's secret leaked:\n{log}");
    let shared = shared_cache_dir();
    for path in [
        home.join("slugs/pwned"),
        home.join("cache/compiled/pwned.cwasm"),
        home.join("cache/build/victim/pwned"),
        shared.join("compiled/pwned.cwasm"),
        shared.join("build/victim/pwned"),
        home.join("pwned"),
        host_registry().join("pwned"),
        PathBuf::from("/tmp/pwned-by-build"),
    ] {
        assert!(!path.exists(), "the build wrote {}", path.display());
    }
    // Nothing the build started is still running.
    wpaas_tests::eventually(std::time::Duration::from_secs(5), || {
        let left: Vec<u32> = sleepers()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("`sleep 300` left running: {left:?}"))
        }
    });
}

#[test]
fn a_hostile_custom_buildpack_sees_nothing_of_the_host() {
    let home = tempfile::tempdir().unwrap();
    let (server, token, secret) = server_with_victim(home.path());
    let h = home.path().display().to_string();
    let port = server.api.port();
    let registry = host_registry().display().to_string();
    // The caches this test's servers share with the others.
    let shared = shared_cache_dir().display().to_string();

    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("app.wasm")).unwrap();
    std::fs::write(src.path().join(".buildpacks"), "pack\n").unwrap();
    executable(
        &src.path().join("pack/bin/detect"),
        "#!/bin/sh\necho Hostile\n",
    );
    executable(
        &src.path().join("pack/bin/release"),
        "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: app.wasm\\n'\n",
    );
    let compile = format!(
        r#"#!/usr/bin/env bash
H={h}
try() {{ local name=$1; shift; if out=$("$@" 2>&1); then echo "ATTACK $name: OK $(echo "$out" | head -c 300 | tr '\n' ' ')"; else echo "ATTACK $name: failed"; fi; }}
echo "uid $(id -u)"
try token cat "$H/token"
try token-search grep -rsl --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr --exclude-dir=dev -e . "$H"
try db ls "$H/db"
try slugs ls "$H/slugs"
try write-slug sh -c "echo x > $H/slugs/pwned"
try write-cwasm sh -c "echo x > $H/cache/compiled/pwned.cwasm"
try write-victim-cache sh -c "echo x > $H/cache/build/victim/pwned"
try shared-cwasm sh -c "echo x > {shared}/compiled/pwned.cwasm"
try shared-key cat "{shared}/compiled.key"
try shared-victim-cache sh -c "echo x > {shared}/build/victim/pwned"
try write-home sh -c "echo x > $H/pwned"
try write-registry sh -c "mkdir -p {registry} && echo x > {registry}/pwned"
try write-tmp sh -c "echo x > /tmp/pwned-by-build && ls /tmp/pwned-by-build"
try secret-search grep -rsa --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr --exclude-dir=dev --exclude-dir=opt "victim""-secret" /
try proc1-environ sh -c "tr '\0' ' ' < /proc/1/environ | grep WPAAS"
try server-env sh -c "env | grep -E 'WPAAS|CARGO_TARGET_DIR'"
try api-port bash -c "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET /apps HTTP/1.0\r\n\r\n' >&3; head -1 <&3"
try api-gateway bash -c "exec 3<>/dev/tcp/10.0.2.2/{port}; printf 'GET /apps HTTP/1.0\r\n\r\n' >&3; head -1 <&3"
setsid sleep 300 >/dev/null 2>&1 < /dev/null &
echo "ATTACK done"
"#
    );
    executable(&src.path().join("pack/bin/compile"), &compile);

    let before = sleepers();
    let out = server.cli(src.path(), &["deploy", "-a", "attacker"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("ATTACK done"), "{log}");
    assert!(log.contains("uid 65534"), "{log}");
    assert_attacks_failed(
        &log,
        &[
            "token",
            "token-search",
            "db",
            "slugs",
            "write-slug",
            "write-cwasm",
            "write-victim-cache",
            "shared-cwasm",
            "shared-key",
            "shared-victim-cache",
            "write-home",
            "write-registry",
            "secret-search",
            "proc1-environ",
            "server-env",
            "api-port",
            "api-gateway",
        ],
    );
    // Its /tmp is its own.
    assert!(log.contains("ATTACK write-tmp: OK"), "{log}");
    assert_host_untouched(home.path(), &log, &token, &secret, &before);
    // The build still produced a working slug.
    assert_eq!(server.get("attacker", "/").status(), 200);
    assert_eq!(server.get("victim", "/").status(), 200);
}

#[test]
fn a_hostile_build_script_sees_nothing_of_the_host() {
    let home = tempfile::tempdir().unwrap();
    let (server, token, secret) = server_with_victim(home.path());
    let h = home.path().display().to_string();
    let port = server.api.port();
    let registry = host_registry().display().to_string();
    let shared = shared_cache_dir().display().to_string();

    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("src")).unwrap();
    std::fs::write(
        src.path().join("Cargo.toml"),
        "[package]\nname = \"evil\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        src.path().join("src/main.rs"),
        "fn main() {\n    print!(\"Content-Type: text/plain\\n\\nbuilt in a sandbox\\n\");\n}\n",
    )
    .unwrap();
    let build_rs = format!(
        r#####"use std::io::{{Read, Write}};
fn report(name: &str, result: Result<String, String>) {{
    match result {{
        Ok(text) => println!("cargo:warning=ATTACK {{name}}: OK {{}}", text.chars().take(200).collect::<String>().replace('\n', " ")),
        Err(_) => println!("cargo:warning=ATTACK {{name}}: failed"),
    }}
}}
fn read(path: &str) -> Result<String, String> {{
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| e.to_string())
}}
fn write(path: &str) -> Result<String, String> {{
    std::fs::write(path, "x").map(|_| String::new()).map_err(|e| e.to_string())
}}
fn main() {{
    let h = "{h}";
    report("token", read(&format!("{{h}}/token")));
    report("db", std::fs::read_dir(format!("{{h}}/db")).map(|_| String::new()).map_err(|e| e.to_string()));
    report("victim-cache", std::fs::read_dir(format!("{{h}}/cache/build/victim")).map(|_| String::new()).map_err(|e| e.to_string()));
    report("write-slug", write(&format!("{{h}}/slugs/pwned")));
    report("write-cwasm", write(&format!("{{h}}/cache/compiled/pwned.cwasm")));
    report("shared-cwasm", write("{shared}/compiled/pwned.cwasm"));
    report("shared-key", read("{shared}/compiled.key"));
    report("shared-victim-cache", std::fs::read_dir("{shared}/build/victim").map(|_| String::new()).map_err(|e| e.to_string()));
    report("write-registry", write("{registry}/pwned"));
    report("proc1-environ", read("/proc/1/environ").and_then(|e| if e.contains("WPAAS") {{ Ok(e) }} else {{ Err(e) }}));
    let server_vars: Vec<String> = std::env::vars().filter(|(k, _)| k.starts_with("WPAAS") || k == "CARGO_TARGET_DIR" && !std::env::var("CARGO_TARGET_DIR").unwrap().starts_with("/cache")).map(|(k, v)| format!("{{k}}={{v}}")).collect();
    report("server-env", if server_vars.is_empty() {{ Err(String::new()) }} else {{ Ok(server_vars.join(" ")) }});
    report("api-port", std::net::TcpStream::connect(("127.0.0.1", {port})).map_err(|e| e.to_string()).and_then(|mut s| {{
        s.write_all(b"GET /apps HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        Ok(answer)
    }}));
    report("internet", std::net::TcpStream::connect("crates.io:443").map(|_| String::new()).map_err(|e| e.to_string()));
    report("leave-process", std::process::Command::new("setsid").args(["sleep", "300"])
        .stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null())
        .spawn().map(|_| String::new()).map_err(|e| e.to_string()));
    println!("cargo:warning=ATTACK done");
}}
"#####
    );
    std::fs::write(src.path().join("build.rs"), build_rs).unwrap();

    let before = sleepers();
    let out = server.cli(src.path(), &["deploy", "-a", "attacker"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("ATTACK done"), "{log}");
    assert_attacks_failed(
        &log,
        &[
            "token",
            "db",
            "victim-cache",
            "write-slug",
            "write-cwasm",
            "shared-cwasm",
            "shared-key",
            "shared-victim-cache",
            "write-registry",
            "proc1-environ",
            "server-env",
            "api-port",
            "internet",
        ],
    );
    // It may start a process; it does not outlive the build.
    assert!(log.contains("ATTACK leave-process: OK"), "{log}");
    assert_host_untouched(home.path(), &log, &token, &secret, &before);
    let answer = server.get("attacker", "/");
    assert_eq!(answer.status(), 200);
    assert!(answer.text().unwrap().contains("built in a sandbox"));
}

/// A source whose custom buildpack compiles once a `go` file is in its
/// build cache (at once if `go` is already there).
fn slow_app(dir: &Path) {
    std::fs::copy(example("hello"), dir.join("app.wasm")).unwrap();
    std::fs::write(dir.join(".buildpacks"), "pack\n").unwrap();
    executable(&dir.join("pack/bin/detect"), "#!/bin/sh\necho Slow\n");
    executable(
        &dir.join("pack/bin/compile"),
        "#!/bin/sh\necho '-----> compiling'\nwhile [ ! -e \"$2/go\" ]; do sleep 0.05; done\n",
    );
    std::fs::write(dir.join("Procfile"), "web: app.wasm\n").unwrap();
}

#[test]
fn builds_beyond_max_builds_wait_for_a_slot() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), &["--max-builds", "1"]).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    slow_app(a.path());
    slow_app(b.path());
    let first_go = server.build_cache("first").join("go");
    let _ = std::fs::remove_file(&first_go);
    let second_go = server.build_cache("second").join("go");
    std::fs::create_dir_all(second_go.parent().unwrap()).unwrap();
    std::fs::write(&second_go, "").unwrap();
    let first = server
        .command(a.path(), &["deploy", "-a", "first"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first build holds the only slot (its compile waits for `go`).
    let started = |app: &str| {
        wpaas_tests::eventually(std::time::Duration::from_secs(30), || {
            // Until the deploy has made the app, `builds` fails.
            let out = server.cli(a.path(), &["builds", "-a", app, "--json"]);
            match serde_json::from_slice::<Vec<Build>>(&out.stdout) {
                Ok(builds) if !builds.is_empty() => Ok(()),
                _ => Err(format!("no build of `{app}` yet: {}", text(&out))),
            }
        })
    };
    started("first");
    let mut second = server
        .command(b.path(), &["deploy", "-a", "second"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the second says it waits for the slot, let the first end.
    let mut second_log = String::new();
    let mut lines = std::io::BufReader::new(second.stdout.take().unwrap());
    while !second_log.contains("Waiting for a build slot") {
        if std::io::BufRead::read_line(&mut lines, &mut second_log).unwrap() == 0 {
            break;
        }
    }
    std::fs::write(&first_go, "").unwrap();
    std::io::Read::read_to_string(&mut lines, &mut second_log).unwrap();
    let second = second.wait_with_output().unwrap();
    second_log.push_str(&String::from_utf8_lossy(&second.stderr));
    let first = first.wait_with_output().unwrap();
    let first_log = text(&first);
    assert!(first.status.success(), "{first_log}");
    assert!(second.status.success(), "{second_log}");
    assert!(first_log.contains("-----> compiling"), "{first_log}");
    assert!(
        second_log.contains("-----> Waiting for a build slot (1 build running)"),
        "{second_log}"
    );
    assert!(
        !first_log.contains("Waiting for a build slot"),
        "{first_log}"
    );
    // It waited for the first build, then built.
    let waited = second_log.find("Waiting for a build slot").unwrap();
    let built = second_log.find("Slow app detected").unwrap();
    assert!(waited < built, "{second_log}");
    assert_eq!(server.get("second", "/").status(), 200);
}

#[test]
fn without_bubblewrap_the_server_refuses_to_build() {
    let home = tempfile::tempdir().unwrap();
    let server =
        Server::start_with_env(home.path(), &[], &[("WPAAS_BWRAP", "/nonexistent/bwrap")]).unwrap();
    let src = tempfile::tempdir().unwrap();
    slow_app(src.path());
    let out = server.cli(src.path(), &["deploy", "-a", "nosandbox"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("builds run in a bubblewrap sandbox, but bwrap is not installed; install it (apt-get install bubblewrap)"),
        "{log}"
    );
    assert!(!log.contains("Slow app detected"), "{log}");
    // Apps that need no build still do not build; the server itself runs.
    let out = server.cli(src.path(), &["apps"]);
    assert!(out.status.success(), "{}", text(&out));
}
