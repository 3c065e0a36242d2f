use super::*;
use std::time::Instant;

#[cfg(unix)]
fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

struct Dirs {
    _root: tempfile::TempDir,
    src: PathBuf,
    req: BuildRequest,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    fs::create_dir(&src).unwrap();
    let req = BuildRequest {
        source_dir: src.clone(),
        slug_dir: root.path().join("slug"),
        cache_dir: root.path().join("cache"),
        toolchains_dir: root.path().join("toolchains"),
        env: vec![("GREETING".into(), "hi there".into())],
        buildpack: None,
        timeout: Duration::from_secs(60),
        sandbox: sandbox(),
    };
    Dirs {
        _root: root,
        src,
        req,
    }
}

/// The real sandbox: these tests run every step under bubblewrap.
fn sandbox() -> crate::sandbox::Sandbox {
    crate::sandbox::Sandbox::new(crate::sandbox::Limits::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run(req: &BuildRequest) -> (Result<BuildOutput, BuildError>, Vec<String>) {
    let mut lines = Vec::new();
    let out = build(req, &mut |l| lines.push(l.to_string()));
    (out, lines)
}

#[test]
fn wasm_buildpack_assembles_wat_and_defaults_to_web() {
    let d = dirs();
    fs::write(d.src.join("app.wat"), "(module (func (export \"_start\")))").unwrap();
    fs::create_dir(d.src.join("public")).unwrap();
    fs::write(d.src.join("public/index.html"), "hi").unwrap();
    fs::create_dir_all(d.src.join("target/x")).unwrap();
    fs::write(d.src.join("target/x/old.wasm"), "stale").unwrap();
    let (out, lines) = run(&d.req);
    let out = out.unwrap();
    assert_eq!(out.buildpack, "wasm");
    assert_eq!(out.procfile.to_string(), "web: app.wasm\n");
    let slug = &d.req.slug_dir;
    assert_eq!(&fs::read(slug.join("app.wasm")).unwrap()[..4], b"\0asm");
    assert!(slug.join("public/index.html").is_file());
    assert!(!slug.join("target").exists());
    assert_eq!(
        fs::read_to_string(slug.join("Procfile")).unwrap(),
        "web: app.wasm\n"
    );
    assert_eq!(out.digest, crate::slug::digest(slug).unwrap());
    assert_eq!(lines[0], "-----> WebAssembly app detected");
    assert!(
        lines.contains(&"       Assembled app.wat -> app.wasm".to_string()),
        "{lines:?}"
    );
    let i = lines
        .iter()
        .position(|l| l == "-----> Discovering process types")
        .unwrap();
    assert_eq!(lines[i + 1], "       Default types for buildpack -> web");
}

#[test]
fn user_procfile_wins_and_is_validated() {
    let d = dirs();
    fs::write(d.src.join("a.wasm"), "\0asm").unwrap();
    fs::write(d.src.join("b.wasm"), "\0asm").unwrap();
    // Two modules and no Procfile: no default.
    let (out, _) = run(&d.req);
    let err = out.unwrap_err();
    assert!(matches!(err, BuildError::NoProcessTypes { .. }), "{err}");
    assert!(err.to_string().contains("2 .wasm files"), "{err}");

    let d = dirs();
    fs::write(d.src.join("a.wasm"), "\0asm").unwrap();
    fs::write(d.src.join("b.wasm"), "\0asm").unwrap();
    fs::write(
        d.src.join("Procfile"),
        "web: a.wasm\nworker: b.wasm --n 2\n",
    )
    .unwrap();
    let (out, lines) = run(&d.req);
    let out = out.unwrap();
    assert_eq!(out.procfile.names(), ["web", "worker"]);
    assert!(lines.contains(&"       Procfile declares types -> web, worker".to_string()));

    let d = dirs();
    fs::write(d.src.join("a.wasm"), "\0asm").unwrap();
    fs::write(
        d.src.join("Procfile"),
        "web: a.wasm\n\nworker: missing.wasm\n",
    )
    .unwrap();
    let err = run(&d.req).0.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Procfile line 3: process type \"worker\" runs missing.wasm, which is not in the app (it has: a.wasm)"
    );

    let d = dirs();
    fs::write(d.src.join("a.wasm"), "\0asm").unwrap();
    fs::write(d.src.join("Procfile"), "web: a.wasm\nWeb!: a.wasm\n").unwrap();
    let err = run(&d.req).0.unwrap_err();
    assert!(matches!(
        err,
        BuildError::Procfile(ProcfileError::InvalidType { line: 2, .. })
    ));
}

#[test]
fn bad_wat_and_empty_source() {
    let d = dirs();
    fs::write(d.src.join("app.wat"), "(module\n  (func (oops)))").unwrap();
    let err = run(&d.req).0.unwrap_err();
    assert!(matches!(err, BuildError::Wat { .. }), "{err}");
    assert!(err.to_string().starts_with("app.wat: "), "{err}");

    let d = dirs();
    fs::write(d.src.join("README.md"), "hi").unwrap();
    let err = run(&d.req).0.unwrap_err();
    assert!(matches!(err, BuildError::NoBuildpack), "{err}");
}

#[cfg(unix)]
fn custom_pack(dir: &Path, compile: &str) {
    executable(&dir.join("bin/detect"), "#!/bin/sh\necho Shell\n");
    executable(&dir.join("bin/compile"), compile);
    executable(
        &dir.join("bin/release"),
        "#!/bin/sh\ncat <<YAML\n---\naddons: []\ndefault_process_types:\n  web: out.wasm --greeting \"x y\"\n  clock: 'out.wasm'\nconfig_vars: {}\nYAML\n",
    );
}

#[cfg(unix)]
#[test]
fn custom_buildpack_follows_the_heroku_contract() {
    let d = dirs();
    let pack = d.src.join("pack");
    custom_pack(
        &pack,
        "#!/bin/sh\nset -e\necho \"-----> Compiling with $(cat \"$3/GREETING\")\"\necho '       to stderr' >&2\nprintf '\\0asm' > \"$1/out.wasm\"\necho cached > \"$2/marker\"\n",
    );
    fs::write(d.src.join("input.txt"), "x").unwrap();
    fs::write(d.src.join(".buildpacks"), "# mine\npack\n").unwrap();
    let (out, lines) = run(&d.req);
    let out = out.unwrap();
    assert_eq!(out.buildpack, "Shell");
    assert_eq!(
        out.procfile.to_string(),
        "web: out.wasm --greeting \"x y\"\nclock: out.wasm\n"
    );
    assert_eq!(out.procfile.get("web").unwrap().args, ["--greeting", "x y"]);
    assert_eq!(lines[0], "-----> Shell app detected");
    assert!(
        lines.contains(&"-----> Compiling with hi there".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"       to stderr".to_string()), "{lines:?}");
    assert!(lines.contains(&"       Default types for buildpack -> web, clock".to_string()));
    assert!(d.req.slug_dir.join("input.txt").is_file());
    assert!(d.req.cache_dir.join("marker").is_file());

    // Chosen explicitly, with a detect that refuses.
    let d = dirs();
    let pack = d.req.cache_dir.parent().unwrap().join("pack");
    custom_pack(&pack, "#!/bin/sh\nexit 0\n");
    executable(&pack.join("bin/detect"), "#!/bin/sh\nexit 1\n");
    let req = BuildRequest {
        buildpack: Some(pack.clone()),
        ..d.req.clone()
    };
    let err = run(&req).0.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "buildpack {} does not apply to this app (bin/detect exited 1)",
            pack.canonicalize().unwrap().display()
        )
    );

    // A failing compile.
    let d = dirs();
    let pack = d.req.cache_dir.parent().unwrap().join("pack");
    custom_pack(&pack, "#!/bin/sh\necho boom\nexit 2\n");
    let req = BuildRequest {
        buildpack: Some(pack),
        ..d.req.clone()
    };
    let (out, lines) = run(&req);
    let err = out.unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::StepFailed {
                step: "compile",
                ..
            }
        ),
        "{err}"
    );
    assert!(lines.contains(&"boom".to_string()));

    // A missing buildpack.
    let d = dirs();
    let req = BuildRequest {
        buildpack: Some("/nonexistent/pack".into()),
        ..d.req.clone()
    };
    assert!(matches!(run(&req).0, Err(BuildError::BadBuildpack { .. })));
}

#[cfg(unix)]
#[test]
fn a_build_over_its_time_limit_is_killed() {
    let d = dirs();
    let pack = d.req.cache_dir.parent().unwrap().join("pack");
    custom_pack(&pack, "#!/bin/sh\necho starting\nsleep 30\necho never\n");
    let req = BuildRequest {
        buildpack: Some(pack),
        timeout: Duration::from_secs(1),
        ..d.req.clone()
    };
    let start = Instant::now();
    let (out, lines) = run(&req);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let err = out.unwrap_err();
    assert!(
        matches!(err, BuildError::TimedOut(t) if t == Duration::from_secs(1)),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the build timed out after 1s and was stopped"
    );
    assert!(lines.contains(&"starting".to_string()));
    assert!(!lines.contains(&"never".to_string()));
}

#[test]
fn release_yaml_defaults() {
    use super::custom::default_process_types as parse;
    assert_eq!(
        parse("---\ndefault_process_types:\n  web: a.wasm --x 1:2\n  worker: \"b.wasm\"\naddons: []\n"),
        [
            ("web".to_string(), "a.wasm --x 1:2".to_string()),
            ("worker".to_string(), "b.wasm".to_string())
        ]
    );
    assert!(parse("default_process_types: {}\n").is_empty());
    assert_eq!(
        parse("default_process_types: { web: a.wasm }"),
        [("web".to_string(), "a.wasm".to_string())]
    );
    assert!(parse("").is_empty());
}

#[test]
fn rust_buildpack_builds_the_hello_example() {
    // Uploaded as `wpaas deploy` would: alone (its `wpaas-sdk = "0.1"` is
    // the platform's copy; the sandbox sees nothing of the repository).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
    let shared_cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/builder-test-cache");
    let d = dirs();
    let tarball = crate::source::Upload::plan(&example)
        .unwrap()
        .pack()
        .unwrap();
    crate::archive::unpack(tarball.as_slice(), &d.src, 1 << 30).unwrap();
    let req = BuildRequest {
        cache_dir: shared_cache,
        timeout: Duration::from_secs(600),
        ..d.req.clone()
    };
    let (out, lines) = run(&req);
    let out = out.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert_eq!(out.buildpack, "rust");
    assert_eq!(lines[0], "-----> Rust app detected");
    assert!(
        lines
            .iter()
            .skip(1)
            .take_while(|l| !l.starts_with("----->"))
            .all(|l| l.starts_with("       ")),
        "{lines:?}"
    );
    let web = out.procfile.get("web").unwrap();
    assert!(req.slug_dir.join(&web.wasm).is_file());
    assert!(lines.contains(&"       Default types for buildpack -> web".to_string()));
}

#[test]
fn an_upload_with_a_marker_builds_the_app_dir_only() {
    let d = dirs();
    fs::create_dir_all(d.src.join("apps/web")).unwrap();
    fs::create_dir_all(d.src.join("libs/shared")).unwrap();
    fs::create_dir_all(d.src.join(".wpaas")).unwrap();
    fs::write(d.src.join(".wpaas/app-dir"), "apps/web\n").unwrap();
    fs::write(
        d.src.join("apps/web/app.wat"),
        "(module (func (export \"_start\")))",
    )
    .unwrap();
    fs::write(d.src.join("libs/shared/other.wat"), "(module)").unwrap();
    let (out, lines) = run(&d.req);
    let out = out.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert_eq!(
        lines[..2],
        [
            "-----> Building apps/web (uploaded with its path dependencies)",
            "-----> WebAssembly app detected"
        ]
    );
    assert_eq!(out.procfile.to_string(), "web: app.wasm\n");
    let slug = &d.req.slug_dir;
    assert!(slug.join("app.wasm").is_file());
    assert!(!slug.join("libs").exists() && !slug.join(".wpaas").exists());
}

#[test]
fn a_bad_marker_fails_the_build() {
    let d = dirs();
    fs::create_dir_all(d.src.join(".wpaas")).unwrap();
    fs::write(d.src.join(".wpaas/app-dir"), "../elsewhere\n").unwrap();
    fs::write(d.src.join("app.wat"), "(module)").unwrap();
    let (out, _) = run(&d.req);
    let err = out.unwrap_err();
    assert!(matches!(err, BuildError::AppDir(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "the upload's .wpaas/app-dir marker is invalid: \"../elsewhere\" contains `..`"
    );
    assert!(!d.req.slug_dir.join("app.wasm").exists());
}
