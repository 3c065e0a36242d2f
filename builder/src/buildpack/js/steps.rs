//! The steps of a JavaScript build: the toolchain install, the app's
//! `npm ci`, esbuild, componentize-js; and the WIT they build against.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use sha2::{Digest, Sha256};

use super::{JsBuildError, OUTPUT, TOOLCHAIN, TOOLCHAIN_LOCK, TOOLCHAIN_PACKAGE, TOOLCHAIN_SHOWN};
use crate::buildpack::{io_err, show, toolchain, BuildError, Ctx};

/// The wasi:http version StarlingMonkey (in componentize-js 0.23.0)
/// exports its fetch-event handler at. componentize-js must be given a
/// world of that version; the server's linker accepts any 0.2.x component
/// (semver-compatible), so the server's WIT is relabelled to it.
pub(super) const ENGINE_WASI_VERSION: &str = "0.2.10";

/// The world componentize-js builds: the server's `app` world (wasi:http,
/// wasi:keyvalue, wasi:config) plus wasi:cli/environment, which
/// `process.env` reads.
const WORLD: &str = "wpaas:platform/http-js";

/// The feature WIT items newer than the engine are gated behind (never
/// enabled, so they are left out).
const NEWER_THAN_ENGINE: &str = "@unstable(feature = newer-than-starlingmonkey)";

/// The SDK (`builder/js/wpaas.js`): what an app imports as `"wpaas"`
/// (esbuild `--alias`), the app's data over wasi:keyvalue and wasi:config.
const SDK: &str = include_str!("../../../js/wpaas.js");

/// Injected into every bundle: `process.env`, the app's config. Read on
/// every access, never kept: componentize-js pre-initialises the component
/// (wizer runs the bundle's top level at build time, with the build's
/// environment), and a value kept then would be frozen into the snapshot.
fn prelude() -> String {
    format!(
        "// wpaas: process.env is the app's config, read from the environment on each access.\n\
         import {{ getEnvironment }} from \"wasi:cli/environment@{ENGINE_WASI_VERSION}\";\n\
         let assigned;\n\
         globalThis.process ??= {{}};\n\
         Object.defineProperty(globalThis.process, \"env\", {{\n\
         \x20 configurable: true,\n\
         \x20 enumerable: true,\n\
         \x20 get() {{\n\
         \x20   return assigned ?? Object.fromEntries(getEnvironment());\n\
         \x20 }},\n\
         \x20 set(value) {{\n\
         \x20   assigned = value;\n\
         \x20 }},\n\
         }});\n"
    )
}

/// The server's WIT ([`crate::wit::FILES`]) relabelled to `engine`: every
/// `@SERVER_VERSION` of a wasi package becomes `@engine`, items
/// `@since` a later version are gated out, and `world.wit` gains the
/// `http-js` world.
pub(super) fn engine_wit(engine: &str) -> Vec<(&'static str, String)> {
    let http = crate::wit::FILES
        .iter()
        .find(|(p, _)| *p == "deps/http.wit")
        .map_or("", |(_, t)| t);
    let server = http
        .lines()
        .find_map(|l| l.trim().strip_prefix("package wasi:http@"))
        .unwrap_or(engine)
        .trim_end_matches(';')
        .to_string();
    let patch = |v: &str| v.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
    let engine_patch = patch(engine).unwrap_or(0);
    crate::wit::FILES
        .iter()
        .map(|(path, text)| {
            let mut out = String::with_capacity(text.len() + 128);
            for line in text.lines() {
                let since = line
                    .trim()
                    .strip_prefix("@since(version = ")
                    .and_then(|v| v.strip_suffix(')'));
                match since.and_then(patch) {
                    Some(p) if p > engine_patch && since.is_some_and(|v| v.starts_with("0.2.")) => {
                        let indent = &line[..line.len() - line.trim_start().len()];
                        out.push_str(indent);
                        out.push_str(NEWER_THAN_ENGINE);
                    }
                    _ => out.push_str(&line.replace(&format!("@{server}"), &format!("@{engine}"))),
                }
                out.push('\n');
            }
            if *path == "world.wit" {
                out.push_str(&format!(
                    "\n/// A JavaScript app (componentize-js): `process.env` reads the environment.\n\
                     world http-js {{\n  include app;\n  import wasi:cli/environment@{engine};\n}}\n"
                ));
            }
            (*path, out)
        })
        .collect()
}

/// The toolchain's directory, installed first when missing.
pub(super) fn toolchain(ctx: &mut Ctx<'_>) -> Result<PathBuf, BuildError> {
    let dir = ctx.req.toolchains_dir.clone();
    let deadline = ctx.deadline;
    let timeout = ctx.req.timeout;
    let log = &mut *ctx.log;
    let done = toolchain::ensure(&dir, TOOLCHAIN, |into| {
        log(&format!(
            "       Installing {TOOLCHAIN_SHOWN} (once per server)"
        ));
        fs::write(into.join("package.json"), TOOLCHAIN_PACKAGE)
            .map_err(io_err("writing the toolchain's package.json"))?;
        fs::write(into.join("package-lock.json"), TOOLCHAIN_LOCK)
            .map_err(io_err("writing the toolchain's package-lock.json"))?;
        // The platform's own pinned install (integrity-checked by the
        // lockfile), no install scripts: outside the sandbox.
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(into);
        let shown = "npm ci --ignore-scripts (toolchain)";
        let status = crate::exec::run(cmd, deadline, &mut |_, line| show(log, line))
            .map_err(|e| BuildError::from_run(e, timeout, shown))?;
        check(status, shown)
    })?;
    ctx.detail(&format!("Using {TOOLCHAIN_SHOWN}"));
    Ok(done)
}

/// Installs the app's dependencies into `CACHE/js/deps/node_modules`
/// (sandboxed, with network, no install scripts) unless the cached ones
/// were installed from the same `package.json` and lockfile.
pub(super) fn install_dependencies(ctx: &mut Ctx<'_>) -> Result<(), BuildError> {
    let slug = ctx.req.slug_dir.clone();
    let js_cache = js_cache(ctx)?;
    let deps = js_cache.join("deps");
    let lock = slug.join("package-lock.json");
    let has_lock = fs::symlink_metadata(&lock).is_ok_and(|m| m.is_file());
    let mut hasher = Sha256::new();
    for file in ["package.json", "package-lock.json", ".npmrc"] {
        hasher.update(file.as_bytes());
        hasher.update(fs::read(slug.join(file)).unwrap_or_default());
    }
    let key = hex::encode(hasher.finalize());
    let key_file = deps.join(".wpaas-key");
    let cached = fs::read_to_string(&key_file).is_ok_and(|k| k == key)
        && fs::symlink_metadata(deps.join("node_modules")).is_ok_and(|m| m.is_dir());
    if cached {
        ctx.detail("Using cached node_modules (package.json and lockfile unchanged)");
        return Ok(());
    }
    if deps.exists() {
        fs::remove_dir_all(&deps).map_err(io_err("clearing the cached node_modules"))?;
    }
    fs::create_dir_all(&deps).map_err(io_err("creating the dependency cache"))?;
    for file in ["package.json", "package-lock.json", ".npmrc"] {
        let from = slug.join(file);
        if fs::symlink_metadata(&from).is_ok_and(|m| m.is_file()) {
            fs::copy(&from, deps.join(file)).map_err(io_err(format!("copying {file}")))?;
        }
    }
    let args: &[&str] = if has_lock {
        &["ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    } else {
        &["install", "--ignore-scripts", "--no-audit", "--no-fund"]
    };
    let shown = format!("npm {}", args.join(" "));
    ctx.detail(&format!("Installing dependencies: {shown}"));
    let mut step = ctx.req.sandbox.step("");
    let cache_in = step.bind(&js_cache, "/cache", true);
    step.program("npm").cwd(cache_in.join("deps")).network(true);
    for arg in args {
        step.arg(*arg);
    }
    step.env("npm_config_cache", cache_in.join("npm-cache"))
        .env("npm_config_update_notifier", "false");
    let status = ctx.run_step(step, &shown, &mut |_| {})?;
    check(status, &shown)?;
    fs::write(&key_file, &key).map_err(io_err("writing the dependency cache key"))?;
    Ok(())
}

/// Bundles the app into `CACHE/js/bundle.js` with esbuild (sandboxed, no
/// network); returns its bytes.
pub(super) fn bundle(
    ctx: &mut Ctx<'_>,
    toolchain: &Path,
    entry: &str,
    with_deps: bool,
) -> Result<Vec<u8>, BuildError> {
    let js_cache = js_cache(ctx)?;
    let work = tempfile::Builder::new()
        .prefix("wpaas-js-")
        .tempdir()
        .map_err(io_err("creating a work directory"))?;
    fs::write(work.path().join("prelude.js"), prelude()).map_err(io_err("writing the prelude"))?;
    fs::write(work.path().join("wpaas.js"), SDK).map_err(io_err("writing the SDK"))?;
    let bundle = js_cache.join("bundle.js");
    let _ = fs::remove_file(&bundle);

    let mut step = ctx.req.sandbox.step("");
    let build_in = step.bind(&ctx.req.slug_dir, "/build", false);
    let cache_in = step.bind(&js_cache, "/cache", true);
    let tools_in = step.bind(toolchain, "/toolchain", false);
    let work_in = step.bind(work.path(), "/js", false);
    let mut argv: Vec<String> = vec![
        entry.to_string(),
        "--bundle".into(),
        "--format=esm".into(),
        "--platform=browser".into(),
        "--log-level=warning".into(),
        "--external:wasi:*".into(),
    ];
    let shown = format!("esbuild {} --outfile=bundle.js", argv.join(" "));
    argv.push(format!("--inject:{}", work_in.join("prelude.js").display()));
    argv.push(format!(
        "--alias:wpaas={}",
        work_in.join("wpaas.js").display()
    ));
    argv.push(format!(
        "--outfile={}",
        cache_in.join("bundle.js").display()
    ));
    step.program("node")
        .arg(tools_in.join("node_modules/esbuild/bin/esbuild"))
        .cwd(build_in);
    for arg in &argv {
        step.arg(arg);
    }
    if with_deps {
        step.env("NODE_PATH", cache_in.join("deps/node_modules"));
    }
    ctx.detail(&format!("Bundling: {shown}"));
    let status = ctx.run_step(step, &shown, &mut |_| {})?;
    check(status, &shown)?;
    read_regular(&bundle).ok_or_else(|| {
        JsBuildError::Failed {
            command: shown,
            status: "0 but wrote no bundle".into(),
        }
        .into()
    })
}

/// Makes `app.wasm` in the slug from the bundle with componentize-js
/// (sandboxed, no network), or copies the last one when the bundle, the
/// toolchain and the WIT are the same. Returns whether it was reused.
pub(super) fn componentize(
    ctx: &mut Ctx<'_>,
    toolchain: &Path,
    bundle: &[u8],
) -> Result<bool, BuildError> {
    let js_cache = js_cache(ctx)?;
    let wit = engine_wit(ENGINE_WASI_VERSION);
    let mut hasher = Sha256::new();
    hasher.update(TOOLCHAIN.as_bytes());
    for (path, text) in &wit {
        hasher.update(path.as_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.update(bundle);
    let key = hex::encode(hasher.finalize());
    let (cached, key_file) = (js_cache.join(OUTPUT), js_cache.join("component.key"));
    let slug_out = ctx.req.slug_dir.join(OUTPUT);
    if fs::read_to_string(&key_file).is_ok_and(|k| k == key) {
        if let Some(bytes) = read_regular(&cached) {
            fs::write(&slug_out, bytes).map_err(io_err(format!("writing {OUTPUT}")))?;
            return Ok(true);
        }
    }
    let _ = fs::remove_file(&key_file);
    let _ = fs::remove_file(&cached);
    let work = tempfile::Builder::new()
        .prefix("wpaas-js-wit-")
        .tempdir()
        .map_err(io_err("creating a work directory"))?;
    for (path, text) in &wit {
        let file = work.path().join("wit").join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent).map_err(io_err("writing the WIT"))?;
        }
        fs::write(file, text).map_err(io_err("writing the WIT"))?;
    }

    let mut step = ctx.req.sandbox.step("");
    let cache_in = step.bind(&js_cache, "/cache", true);
    let tools_in = step.bind(toolchain, "/toolchain", false);
    let work_in = step.bind(work.path(), "/js", false);
    let shown = format!("componentize-js bundle.js --wit WIT --world-name {WORLD} -o {OUTPUT}");
    step.program("node")
        .arg(tools_in.join("node_modules/@bytecodealliance/componentize-js/src/cli.js"))
        .arg(cache_in.join("bundle.js"))
        .arg("--wit")
        .arg(work_in.join("wit"))
        .arg("--world-name")
        .arg(WORLD)
        .arg("-o")
        .arg(cache_in.join(OUTPUT))
        .cwd(cache_in);
    ctx.detail(&format!("Componentizing: {shown}"));
    let status = ctx.run_step(step, &shown, &mut |_| {})?;
    check(status, &shown)?;
    let bytes = read_regular(&cached).ok_or(JsBuildError::NoComponent)?;
    fs::write(&slug_out, bytes).map_err(io_err(format!("writing {OUTPUT}")))?;
    fs::write(&key_file, &key).map_err(io_err("writing the component cache key"))?;
    Ok(false)
}

/// `CACHE/js`, created.
fn js_cache(ctx: &Ctx<'_>) -> Result<PathBuf, BuildError> {
    let dir = ctx.req.cache_dir.join("js");
    fs::create_dir_all(&dir).map_err(io_err("creating the JavaScript build cache"))?;
    Ok(dir)
}

/// The bytes of a regular file a sandboxed step wrote (no symlink).
fn read_regular(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    fs::read(path).ok()
}

fn check(status: ExitStatus, shown: &str) -> Result<(), BuildError> {
    if status.success() {
        return Ok(());
    }
    Err(JsBuildError::Failed {
        command: shown.to_string(),
        status: status
            .code()
            .map_or_else(|| "on a signal".to_string(), |c| c.to_string()),
    }
    .into())
}
