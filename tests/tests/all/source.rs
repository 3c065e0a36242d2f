//! Deploying a crate whose path dependencies live outside its directory.

use wpaas_tests::{workspace_root, Server};

#[test]
fn deploy_a_crate_with_its_sdk_as_an_outside_path_dependency() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    // examples/hello beside a copy of sdk/, depending on it by path
    // (`wpaas-sdk = { path = "../sdk" }`) instead of by version.
    let tree = tempfile::tempdir().unwrap();
    let (app, sdk) = (tree.path().join("hello"), tree.path().join("sdk"));
    let repo = workspace_root();
    for (from, to) in [
        ("examples/hello/Cargo.lock", app.join("Cargo.lock")),
        ("examples/hello/src/main.rs", app.join("src/main.rs")),
        ("sdk/Cargo.toml", sdk.join("Cargo.toml")),
        ("sdk/src/lib.rs", sdk.join("src/lib.rs")),
    ] {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(from), to).unwrap();
    }
    let manifest = std::fs::read_to_string(repo.join("examples/hello/Cargo.toml")).unwrap();
    assert!(manifest.contains("wpaas-sdk = \"0.1\""), "{manifest}");
    std::fs::write(
        app.join("Cargo.toml"),
        manifest.replace("wpaas-sdk = \"0.1\"", "wpaas-sdk = { path = \"../sdk\" }"),
    )
    .unwrap();
    let out = server.cli(&app, &["deploy", "-a", "hello"]);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Including path dependency ../sdk"), "{log}");
    assert!(
        log.contains("-----> Building hello (uploaded with its path dependencies)"),
        "{log}"
    );
    assert!(log.contains("-----> Rust app detected"), "{log}");
    assert!(
        log.contains("Released v1: http://hello.localhost:"),
        "{log}"
    );

    let response = server.get("hello", "/");
    assert_eq!(response.status(), 200);
    let body = response.text().unwrap();
    assert!(
        body.contains("Hello from wpaas! (GREETING=unset)"),
        "{body}"
    );
}
