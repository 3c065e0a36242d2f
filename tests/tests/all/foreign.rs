//! Foreign guests: `examples/wasi-foreign`, a component written against the
//! standard WIT as wasmtime's own test programs `cli_serve_keyvalue` and
//! `cli_serve_config` are, answers under wpaas exactly as under `wasmtime
//! serve -Skeyvalue -Sconfig` (wasmtime 48, which wpaas is built on) given
//! the same data: `hello` = `world` in the bucket `open("")` opens and in
//! the config.
//!
//! The reference is `tests/fixtures/wasi-foreign/wasmtime-serve.txt`,
//! recorded from `wasmtime serve` 48.0.8 by `regenerate.sh` beside it (run
//! it again after changing the guest). When a wasmtime 48 CLI is installed
//! (on PATH or in ~/.cargo/bin) the test also serves the guest with it and
//! compares live; it prints which way it ran. Building `wasmtime serve`
//! into the tests instead (the `wasmtime-cli` crate) would compile the
//! wasmtime crate, wasmtime-wasi, wasmtime-wasi-http and the host a second
//! time with other features, minutes per build, so it is not a dependency.

use std::path::Path;

use wpaas_tests::load::{command_version, find_wasmtime, WasmtimeServe};
use wpaas_tests::{client, example, text, workspace_root, Server};

const APP: &str = "foreign";

/// What is asked, in order (as `regenerate.sh` does).
const PATHS: &[&str] = &["/", "/keyvalue", "/config", "/transcript"];

/// How `wasmtime serve` is given the data (as `regenerate.sh` does).
const OPTIONS: &[&str] = &[
    "-Scli",
    "-Skeyvalue",
    "-Skeyvalue-in-memory-data=hello=world",
    "-Sconfig",
    "-Sconfig-var=hello=world",
];

/// The answers to [`PATHS`] from the server at `base` (`http://ADDR`) for
/// `host`, in the reference's format: `== GET PATH STATUS`, the body, a
/// newline.
fn answers(base: &str, host: &str) -> String {
    let mut out = String::new();
    for path in PATHS {
        let response = client()
            .get(format!("{base}{path}"))
            .header("host", host)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.text().unwrap();
        out += &format!("== GET {path} {status}\n{body}\n");
    }
    out
}

/// Fails with the lines that differ when `got` is not `want`.
fn assert_same(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let (got_lines, want_lines): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    let differ: Vec<String> = (0..got_lines.len().max(want_lines.len()))
        .filter(|&i| got_lines.get(i) != want_lines.get(i))
        .map(|i| {
            format!(
                "line {}: {:?} / {:?}",
                i + 1,
                got_lines.get(i),
                want_lines.get(i)
            )
        })
        .collect();
    panic!("{what} differ:\n{}\n\nall of it:\n{got}", differ.join("\n"));
}

fn deploy_with_the_data(server: &Server, src: &Path) {
    for args in [
        &["deploy", "-a", APP][..],
        &["kv:create", "default", "-a", APP],
        &["kv:set", "hello", "world", "-a", APP],
        &["config:set", "hello=world", "-a", APP],
    ] {
        let out = server.cli(src, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_foreign_guest_answers_as_under_wasmtime_serve() {
    let wasm = example("wasi-foreign");
    let reference = std::fs::read_to_string(
        workspace_root().join("tests/fixtures/wasi-foreign/wasmtime-serve.txt"),
    )
    .unwrap();

    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(&wasm, src.path().join("wasi-foreign.wasm")).unwrap();
    std::fs::write(src.path().join("Procfile"), "web: wasi-foreign.wasm\n").unwrap();
    let server = Server::start(home.path()).unwrap();
    deploy_with_the_data(&server, src.path());
    let base = format!("http://{}", server.router);
    let host = format!("{APP}.localhost");
    let wpaas = answers(&base, &host);
    assert_same(&wpaas, &reference, "wpaas / wasmtime serve");

    // The transcript puts back what it changed: the durable bucket answers
    // the same again and holds only what it held.
    assert_same(
        &answers(&base, &host),
        &reference,
        "wpaas again / wasmtime serve",
    );
    let out = server.cli(src.path(), &["kv:info", "-a", APP]);
    assert!(text(&out).contains("default  1 keys"), "{}", text(&out));

    let live = find_wasmtime().and_then(|bin| {
        let version = command_version(&bin).ok()?;
        version
            .starts_with("wasmtime 48.")
            .then_some((bin, version))
    });
    match live {
        Some((bin, version)) => {
            let serve = WasmtimeServe::start_with(&bin, &wasm, OPTIONS).unwrap();
            let wasmtime = answers(&format!("http://{}", serve.addr), "localhost");
            assert_same(&wasmtime, &reference, &format!("{version} live / recorded"));
            eprintln!("foreign: compared with the recorded answers and live with {version}");
        }
        None => eprintln!(
            "foreign: compared with the recorded answers only (no wasmtime 48 on PATH or in ~/.cargo/bin)"
        ),
    }
}
