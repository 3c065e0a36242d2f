use super::*;
use crate::buildpack::{build, BuildRequest};
use std::time::Duration;

#[test]
fn detects_app_py_requirements_or_pyproject_at_the_top() {
    for marker in MARKERS {
        let dir = tempfile::tempdir().unwrap();
        assert!(!detect(dir.path()));
        fs::write(dir.path().join(marker), "").unwrap();
        assert!(detect(dir.path()), "{marker}");
    }
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/app.py"), "").unwrap();
    fs::write(dir.path().join("setup.py"), "").unwrap();
    assert!(!detect(dir.path()));
}

#[test]
fn the_sdk_and_the_entry_module_are_written_for_the_app_module() {
    let dir = tempfile::tempdir().unwrap();
    write_platform(dir.path(), "main").unwrap();
    let entry = fs::read_to_string(dir.path().join("sdk/wpaas_entry.py")).unwrap();
    assert!(entry.contains("import_module(\"main\")"), "{entry}");
    assert!(!entry.contains("__WPAAS_APP_MODULE__"));
    for file in [
        "sdk/wpaas/__init__.py",
        "sdk/wpaas/wsgi.py",
        "vendor.py",
        "wit/world.wit",
    ] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
}

/// A Makefile next to app.py still makes a Python app, and a dependency
/// with native extensions fails the build naming it. Installs the real
/// toolchain (once per machine, into the temporary directory) and runs
/// pip in the real sandbox, with network.
#[test]
fn a_native_dependency_fails_the_build_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(
        src.join("app.py"),
        "def handle(request):\n    return 'hi'\n",
    )
    .unwrap();
    fs::write(src.join("Makefile"), "all:\n\tfalse\n").unwrap();
    fs::write(src.join("requirements.txt"), "ujson==5.10.0\n").unwrap();
    let req = BuildRequest {
        source_dir: src,
        slug_dir: root.path().join("slug"),
        cache_dir: root.path().join("cache"),
        toolchains_dir: std::env::temp_dir().join("wpaas-test-toolchains"),
        env: Vec::new(),
        buildpack: None,
        timeout: Duration::from_secs(600),
        sandbox: crate::sandbox::Sandbox::new(crate::sandbox::Limits::default())
            .unwrap_or_else(|e| panic!("{e}")),
    };
    let mut lines = Vec::new();
    let err = build(&req, &mut |l| lines.push(l.to_string())).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, BuildError::Python(PythonBuildError::Native { name }) if name == "ujson"),
        "{message}\n{}",
        lines.join("\n")
    );
    assert!(!message.contains('\n'));
    assert!(message.contains("ujson has native extensions"), "{message}");
    assert!(lines.iter().any(|l| l == "-----> Python app detected"));
}
