//! The C buildpack: Debian's clang, lld and wasi-libc build a WAGI program
//! on the server, and it gets config, scaling and logs like any app.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use wpaas_tests::{eventually, replicas, text, workspace_root, Server};

fn c_hello() -> std::path::PathBuf {
    workspace_root().join("examples/c-hello")
}

#[test]
fn c_hello_deploys_from_source_with_config_scale_and_logs() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(&c_hello(), &["deploy", "-a", "chello"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("-----> C app detected"), "{log}");
    assert!(log.contains("Running make (Makefile)"), "{log}");
    // make's own command lines, with the toolchain the buildpack exported.
    assert!(
        log.contains("clang --target=wasm32-wasi -O2 -Wall -c -o hello.o hello.c"),
        "{log}"
    );
    assert!(log.contains("Built app.wasm ("), "{log}");
    assert!(log.contains("Default types for buildpack -> web"), "{log}");
    assert!(
        log.contains("Released v1: http://chello.localhost:"),
        "{log}"
    );

    let response = server.get("chello", "/?who=C%20fan&x=1");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let body = response.text().unwrap();
    assert!(
        body.contains("Hello, C fan, from C! (GREETING=unset)"),
        "{body}"
    );
    assert!(
        body.contains("method=GET path=/ query=who=C%20fan&x=1 dyno=web.1"),
        "{body}"
    );
    let missing = server.get("chello", "/nope");
    assert_eq!(missing.status(), 404);

    // Config reaches the program as environment, in a new release.
    let out = server.cli(&c_hello(), &["config:set", "GREETING=hej", "-a", "chello"]);
    assert!(text(&out).contains("done, v2"), "{}", text(&out));
    let body = server.get("chello", "/").text().unwrap();
    assert!(
        body.contains("Hello, world, from C! (GREETING=hej)"),
        "{body}"
    );

    // Two replicas, both serving (ties between idle replicas rotate).
    server.ok(&c_hello(), &["ps:scale", "web=2", "-a", "chello"]);
    assert_eq!(replicas(&server.ps("chello"), "web").len(), 2);
    let dynos: BTreeSet<String> = (0..8)
        .map(|_| {
            let body = server.get("chello", "/").text().unwrap();
            body.rsplit("dyno=").next().unwrap().trim().to_string()
        })
        .collect();
    assert_eq!(
        dynos.iter().map(String::as_str).collect::<Vec<_>>(),
        ["web.1", "web.2"]
    );

    // The program's stderr is its log, next to the router's lines.
    let logs = eventually(Duration::from_secs(10), || {
        let out = server.cli(&c_hello(), &["logs", "-a", "chello", "-n", "500"]);
        let logs = text(&out);
        let app_line = logs
            .lines()
            .any(|l| l.contains("app[web.") && l.contains("c-hello: GET /?who=C%20fan&x=1"));
        let router_line = logs
            .lines()
            .any(|l| l.contains("app[router]") && l.contains("status=404"));
        if app_line && router_line {
            Ok(logs)
        } else {
            Err(logs)
        }
    });
    assert!(logs.contains("C app detected"), "{logs}");
}

/// Copies the example's sources, without its Makefile, into `dir`.
fn bare_sources(dir: &Path) {
    for file in ["hello.c", "query.c", "query.h"] {
        std::fs::copy(c_hello().join(file), dir.join(file)).unwrap();
    }
}

#[test]
fn c_files_without_a_makefile_are_compiled_into_app_wasm() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    bare_sources(src.path());
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "cbare"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Compiling: clang --target=wasm32-wasi -O2 -Wall -Wl,--strip-debug -o app.wasm hello.c query.c"),
        "{log}"
    );
    let body = server.get("cbare", "/?who=bare").text().unwrap();
    assert!(body.contains("Hello, bare, from C!"), "{body}");
}

#[test]
fn a_compile_error_is_a_clear_build_error() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("broken.c"),
        "int main(void) {\n    return missing;\n}\n",
    )
    .unwrap();
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "cbroken"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    // The compiler's own message, then the build's one-line verdict.
    assert!(
        log.contains("broken.c:2:12: error: use of undeclared identifier 'missing'"),
        "{log}"
    );
    assert!(
        log.contains("the C build failed: `clang --target=wasm32-wasi"),
        "{log}"
    );
    assert!(
        log.contains("exited 1; see the compiler's output above"),
        "{log}"
    );
    // A first deploy that fails releases nothing and leaves no app.
    assert!(!server
        .ok(src.path(), &["apps"])
        .lines()
        .any(|l| l == "cbroken"));

    // A Makefile that builds no .wasm is refused with what to do.
    std::fs::remove_file(src.path().join("broken.c")).unwrap();
    std::fs::write(
        src.path().join("Makefile"),
        "all:\n\t@echo nothing to build\n",
    )
    .unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "cbroken"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("nothing to build"), "{log}");
    assert!(
        log.contains("the Makefile built no .wasm file at the top of the app"),
        "{log}"
    );
}
