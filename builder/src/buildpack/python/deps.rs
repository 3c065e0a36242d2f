//! Vendoring an app's dependencies: pip, in the build sandbox with
//! network, installs `requirements.txt` (or `pyproject.toml`'s
//! `[project] dependencies`) into the app's build cache, keyed by the
//! file's digest; componentize-py then finds them on its module path and
//! snapshots what the app imports. Pure Python only: `vendor.py` (shipped
//! in `builder/python/`) rebuilds a package pip took as a native wheel from
//! source with the C compiler disabled (MarkupSafe then builds without its
//! optional speedups) and names one that still needs C.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{exit_text, install, io_err, BuildError, Ctx, PythonBuildError};

/// Changes when what a cached set of dependencies holds would change.
const CACHE_VERSION: &str = "1";
/// What `vendor.py` prints for each package that is not pure Python.
const NATIVE_PREFIX: &str = "wpaas-native: ";

/// The directory of the app's vendored dependencies, installing them
/// first unless the same list is cached; `None` when there are none.
pub(super) fn vendor(
    ctx: &mut Ctx<'_>,
    toolchain: &Path,
    platform: &Path,
) -> Result<Option<PathBuf>, BuildError> {
    let slug = ctx.req.slug_dir.clone();
    let Some(file) = ["requirements.txt", "pyproject.toml"]
        .into_iter()
        .find(|f| slug.join(f).is_file())
    else {
        return Ok(None);
    };
    let text = fs::read(slug.join(file)).map_err(io_err(format!("reading {file}")))?;
    let listed = String::from_utf8_lossy(&text)
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if file == "requirements.txt" && !listed {
        return Ok(None);
    }
    let key = hex::encode(
        Sha256::new()
            .chain_update(CACHE_VERSION)
            .chain_update(install::TOOLCHAIN)
            .chain_update(file)
            .chain_update(&text)
            .chain_update(super::VENDOR)
            .finalize(),
    );
    let root = ctx.req.cache_dir.join("python");
    let done = root.join(format!("deps-{}", &key[..16]));
    if done.is_dir() {
        ctx.step(&format!("Using the dependencies of {file} (cached)"));
        return Ok(Some(done));
    }
    ctx.step(&format!(
        "Installing dependencies from {file} (pure Python)"
    ));
    fs::create_dir_all(&root).map_err(io_err(format!("creating {}", root.display())))?;
    let partial = root.join("deps.partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io_err("removing a partial install"))?;
    }

    let mut step = ctx.req.sandbox.step("");
    let build = step.bind(&slug, "/build", false);
    let tool = step.bind(toolchain, install::INSIDE, false);
    let sdk = step.bind(platform, "/opt/wpaas-python", false);
    let cache = step.bind(&root, "/cache/python", true);
    step.program(tool.join("venv/bin/python"))
        .arg(sdk.join("vendor.py"))
        .arg(cache.join("deps.partial"))
        .arg(build.join(file))
        .cwd(build)
        .network(true);
    let mut native = Vec::new();
    let status = ctx.run_step(step, "pip install", &mut |line| {
        if let Some(name) = line.strip_prefix(NATIVE_PREFIX) {
            native.push(name.trim().to_string());
        }
    })?;
    if let Some(name) = native.into_iter().next() {
        return Err(PythonBuildError::Native { name }.into());
    }
    if !status.success() {
        return Err(PythonBuildError::Dependencies {
            status: exit_text(status),
        }
        .into());
    }
    // Only the newest list is kept.
    for entry in fs::read_dir(&root).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("deps-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    fs::rename(&partial, &done).map_err(io_err("caching the dependencies"))?;
    Ok(Some(done))
}
