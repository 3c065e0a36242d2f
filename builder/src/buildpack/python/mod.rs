//! The `python` buildpack: a Python app built into a wasi:http component
//! with componentize-py (CPython compiled to WebAssembly, the app's
//! modules imported and snapshotted at build time).
//!
//! 1. componentize-py, pinned by version and hash, is installed once per
//!    server into a venv of the server's `python3` ([`install`]): the
//!    platform's own install, so it runs outside the sandbox.
//! 2. The app's `requirements.txt` (or `pyproject.toml` dependencies) are
//!    vendored with pip in the build sandbox, with network ([`deps`]):
//!    pure-Python packages only, cached in the app's cache dir by the
//!    requirements' digest, so an unchanged list costs nothing.
//! 3. `componentize-py -d WIT -w wpaas:platform/app componentize` runs in
//!    the sandbox without network, against the WIT the server ships
//!    ([`crate::wit`]), with the wpaas Python SDK (`builder/python/`) on
//!    its path: its entry module imports the app's `app.py` and serves it
//!    through `handle(request)` or its WSGI `app`. The world is
//!    `wpaas:platform/app`, so the app can use its data through the SDK's
//!    `wpaas.kv` (wasi:keyvalue) and `wpaas.config` (wasi:config).

mod deps;
mod install;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::{io_err, BuildError, Compiled, Ctx};

/// The files that say "Python app", at the top of the source.
const MARKERS: &[&str] = &["app.py", "requirements.txt", "pyproject.toml"];
/// The modules an app may keep its handler in, in order of preference.
const ENTRY_MODULES: &[&str] = &["app", "main"];
/// The component the build writes, the default `web` process.
const OUTPUT: &str = "app.wasm";

/// The wpaas Python SDK, put on the app's module path.
const SDK: &[(&str, &str)] = &[
    (
        "wpaas/__init__.py",
        include_str!("../../../python/wpaas/__init__.py"),
    ),
    (
        "wpaas/_serve.py",
        include_str!("../../../python/wpaas/_serve.py"),
    ),
    (
        "wpaas/wsgi.py",
        include_str!("../../../python/wpaas/wsgi.py"),
    ),
    ("wpaas/kv.py", include_str!("../../../python/wpaas/kv.py")),
    (
        "wpaas/config.py",
        include_str!("../../../python/wpaas/config.py"),
    ),
];
/// The component's entry module; `__WPAAS_APP_MODULE__` is the app's.
const ENTRY: &str = include_str!("../../../python/wpaas_entry.py");
/// The script that vendors dependencies ([`deps`]).
const VENDOR: &str = include_str!("../../../python/vendor.py");

/// Why a Python build failed.
#[derive(Debug, thiserror::Error)]
pub enum PythonBuildError {
    /// The server has no usable `python3` to make the toolchain's venv.
    #[error("the Python buildpack needs python3 with venv and pip on the server ({reason}); install them there: apt-get install python3 python3-venv python3-pip")]
    NoPython {
        /// What is missing.
        reason: String,
    },
    /// Installing componentize-py failed (its output was shown).
    #[error("installing {toolchain} failed: `{command}` exited {status}; see the output above")]
    Toolchain {
        /// e.g. `componentize-py-0.25.1`.
        toolchain: String,
        /// What ran.
        command: String,
        /// Its exit status.
        status: String,
    },
    /// No module to serve.
    #[error("no app.py (or main.py) at the top of the app: the Python buildpack serves its handle(request) or WSGI `app`")]
    NoEntry,
    /// A dependency is not pure Python.
    #[error("the Python dependency {name} has native extensions (compiled C), which cannot run in a WebAssembly component: only pure-Python packages can be vendored; remove it or use a pure-Python alternative")]
    Native {
        /// The distribution's name, as pip spells it.
        name: String,
    },
    /// pip failed for another reason (its output was shown).
    #[error("installing the app's Python dependencies failed: pip exited {status}; see its output above")]
    Dependencies {
        /// pip's exit status.
        status: String,
    },
    /// componentize-py failed: usually the app raised while being imported.
    #[error("componentize-py failed (exit {status}): the app could not be built into a component; see its output above")]
    Componentize {
        /// Its exit status.
        status: String,
    },
}

/// Whether the source is a Python app: `app.py`, `requirements.txt` or
/// `pyproject.toml` at its top.
pub(super) fn detect(slug: &Path) -> bool {
    MARKERS.iter().any(|m| slug.join(m).is_file())
}

pub(super) fn build(ctx: &mut Ctx<'_>) -> Result<Compiled, BuildError> {
    ctx.step("Python app detected");
    let slug = ctx.req.slug_dir.clone();
    let module = ENTRY_MODULES
        .iter()
        .find(|m| slug.join(format!("{m}.py")).is_file())
        .ok_or(PythonBuildError::NoEntry)?;

    let toolchain = install::ensure(ctx)?;

    // The platform's files for this build: SDK, entry module, WIT, vendor
    // script; read-only in the sandbox.
    let platform = tempfile::Builder::new()
        .prefix("wpaas-python-")
        .tempdir()
        .map_err(io_err("creating the Python SDK directory"))?;
    write_platform(platform.path(), module)?;

    let deps = deps::vendor(ctx, &toolchain, platform.path())?;

    ctx.step(&format!("Building {OUTPUT} with {}", install::TOOLCHAIN));
    let started = std::time::Instant::now();
    let mut step = ctx.req.sandbox.step("");
    let build = step.bind(&slug, "/build", true);
    let tool = step.bind(&toolchain, install::INSIDE, false);
    let sdk = step.bind(platform.path(), "/opt/wpaas-python", false);
    let mut path = vec![build.clone(), sdk.join("sdk")];
    if let Some(deps) = &deps {
        path.push(step.bind(deps, "/opt/wpaas-deps", false));
    }
    step.cwd(build.clone());
    install::command(&mut step, &tool);
    step.arg("-d")
        .arg(sdk.join("wit"))
        .arg("-w")
        .arg(crate::wit::APP_WORLD)
        .arg("componentize");
    for dir in &path {
        step.arg("-p").arg(dir);
    }
    step.arg("wpaas_entry").arg("-o").arg(build.join(OUTPUT));
    let status = ctx.run_step(step, "componentize-py", &mut |_| {})?;
    if !status.success() {
        return Err(PythonBuildError::Componentize {
            status: exit_text(status),
        }
        .into());
    }
    // componentize-py's interpreter caches bytecode beside the app's
    // modules: it is in the component already, not needed in the slug.
    remove_pycache(&slug);
    let size = fs::symlink_metadata(slug.join(OUTPUT))
        .map(|m| m.len())
        .unwrap_or(0);
    ctx.detail(&format!(
        "Built {OUTPUT} ({:.1} MB, wasi:http component) in {:.1}s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ));
    Ok(Compiled {
        name: "python".into(),
        defaults: vec![("web".into(), OUTPUT.into())],
        no_defaults_hint: String::new(),
    })
}

/// Writes `sdk/` (the SDK and the entry module for `module`), `wit/`
/// and `vendor.py` into `dir`.
fn write_platform(dir: &Path, module: &str) -> Result<(), BuildError> {
    let entry = ENTRY.replace("__WPAAS_APP_MODULE__", module);
    let files = SDK
        .iter()
        .map(|(p, t)| (PathBuf::from("sdk").join(p), t.to_string()))
        .chain([
            (PathBuf::from("sdk/wpaas_entry.py"), entry),
            (PathBuf::from("vendor.py"), VENDOR.to_string()),
        ]);
    for (path, text) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent).map_err(io_err("writing the Python SDK"))?;
        }
        fs::write(&file, text).map_err(io_err("writing the Python SDK"))?;
    }
    crate::wit::write_to(&dir.join("wit")).map_err(io_err("writing the WIT"))
}

/// Removes every `__pycache__` directory under `dir` (symlinks are not
/// followed).
fn remove_pycache(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        if entry.file_name() == "__pycache__" {
            let _ = fs::remove_dir_all(entry.path());
        } else {
            remove_pycache(&entry.path());
        }
    }
}

fn exit_text(status: ExitStatus) -> String {
    status
        .code()
        .map_or_else(|| "on a signal".to_string(), |c| c.to_string())
}

#[cfg(test)]
mod tests;
