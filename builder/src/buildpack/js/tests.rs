use super::steps::{engine_wit, ENGINE_WASI_VERSION};
use super::*;
use crate::buildpack::{build, BuildRequest};
use std::path::PathBuf;
use std::time::Duration;

fn request(src: &Path, root: &Path) -> BuildRequest {
    BuildRequest {
        source_dir: src.to_path_buf(),
        slug_dir: root.join("slug"),
        cache_dir: root.join("cache"),
        toolchains_dir: root.join("toolchains"),
        env: Vec::new(),
        buildpack: None,
        timeout: Duration::from_secs(60),
        sandbox: crate::sandbox::Sandbox::unsandboxed(crate::sandbox::Limits::default()),
    }
}

fn write(path: PathBuf, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn package_json_at_the_top_is_a_javascript_app() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!detect(dir.path()));
    write(dir.path().join("lib/package.json"), "{}");
    assert!(!detect(dir.path()));
    write(dir.path().join("package.json"), "{}");
    assert!(detect(dir.path()));
}

#[test]
fn wasm_files_under_node_modules_do_not_make_a_wasm_app() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    // Valid-looking files so that, if the wasm buildpack claimed the app,
    // the build would succeed instead of failing as a JavaScript one.
    write(src.join("node_modules/esbuild-wasm/esbuild.wasm"), "\0asm");
    write(src.join("node_modules/a/b/c.wat"), "(module)");
    write(src.join("index.js"), "addEventListener('fetch', () => {});");
    // Invalid package.json: the JavaScript buildpack stops before its
    // toolchain (which would need the network).
    write(src.join("package.json"), "{ not json");
    assert!(!crate::buildpack::wasm::detect(&src));
    let mut lines = Vec::new();
    let err = build(&request(&src, root.path()), &mut |l| {
        lines.push(l.to_string())
    })
    .unwrap_err();
    assert!(
        lines.iter().any(|l| l == "-----> JavaScript app detected"),
        "{lines:?}"
    );
    assert!(
        matches!(err, BuildError::Js(JsBuildError::PackageJson(_))),
        "{err}"
    );
    assert!(err.to_string().starts_with("package.json is not valid: "));

    // A .wasm of the app's own, outside node_modules, is still a wasm app.
    write(src.join("app.wasm"), "\0asm");
    assert!(crate::buildpack::wasm::detect(&src));
    assert_eq!(crate::procfile::wasm_files(&src), ["app.wasm"]);
}

#[test]
fn package_json_gives_main_and_whether_to_install() {
    let p =
        parse_package(r#"{"name":"x","main":"src/app.js","dependencies":{"hono":"^4"}}"#).unwrap();
    assert_eq!(p.main.as_deref(), Some("src/app.js"));
    assert!(p.has_dependencies);
    let p = parse_package(r#"{"name":"x","dependencies":{},"devDependencies":{}}"#).unwrap();
    assert_eq!(
        p,
        Package {
            main: None,
            has_dependencies: false
        }
    );
    assert!(
        parse_package(r#"{"devDependencies":{"typescript":"5"}}"#)
            .unwrap()
            .has_dependencies
    );
    assert!(matches!(
        parse_package("[1]"),
        Err(JsBuildError::PackageJson(_))
    ));
}

#[test]
fn the_entry_point_is_main_else_index_js_else_src_index_js() {
    let dir = tempfile::tempdir().unwrap();
    let none = Package {
        main: None,
        has_dependencies: false,
    };
    assert!(matches!(
        entry_point(dir.path(), &none),
        Err(JsBuildError::NoEntry)
    ));
    write(dir.path().join("src/index.js"), "");
    assert_eq!(entry_point(dir.path(), &none).unwrap(), "src/index.js");
    write(dir.path().join("index.js"), "");
    assert_eq!(entry_point(dir.path(), &none).unwrap(), "index.js");
    let main = |m: &str| Package {
        main: Some(m.to_string()),
        has_dependencies: false,
    };
    write(dir.path().join("lib/server.js"), "");
    assert_eq!(
        entry_point(dir.path(), &main("./lib/server.js")).unwrap(),
        "lib/server.js"
    );
    for bad in ["missing.js", "../index.js", "/etc/passwd", "lib"] {
        assert!(
            matches!(
                entry_point(dir.path(), &main(bad)),
                Err(JsBuildError::BadMain(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_wit_is_relabelled_to_the_engines_wasi_version() {
    let wit = engine_wit(ENGINE_WASI_VERSION);
    assert_eq!(wit.len(), crate::wit::FILES.len());
    let http = &wit.iter().find(|(p, _)| *p == "deps/http.wit").unwrap().1;
    assert!(http.starts_with(&format!("package wasi:http@{ENGINE_WASI_VERSION};")));
    let world = &wit.iter().find(|(p, _)| *p == "world.wit").unwrap().1;
    assert!(world.contains(&format!("include wasi:http/proxy@{ENGINE_WASI_VERSION};")));
    assert!(world.contains("world http-js {\n  include app;"));
    assert!(world.contains("import wasi:keyvalue/store@0.2.0-draft;"));
    assert!(world.contains(&format!(
        "import wasi:cli/environment@{ENGINE_WASI_VERSION};"
    )));
    let newer: u32 = 11;
    for (path, text) in &wit {
        for line in text.lines() {
            let since = line.trim().strip_prefix("@since(version = 0.2.");
            let patch = since.and_then(|v| v.trim_end_matches(')').parse::<u32>().ok());
            assert!(patch.is_none_or(|p| p < newer), "{path}: {line}");
            let Some(pos) = line.find("@0.2.") else {
                continue;
            };
            let version = line[pos + 1..]
                .split([';', ' ', ',', '}', '{'])
                .next()
                .unwrap();
            let version = version.trim_end_matches('.');
            // wasi:keyvalue and wasi:config keep their own pre-release
            // versions (0.2.0-draft, 0.2.0-rc.1).
            if !version.contains('-') {
                assert_eq!(version, ENGINE_WASI_VERSION, "{path}: {line}");
            }
        }
    }
}
