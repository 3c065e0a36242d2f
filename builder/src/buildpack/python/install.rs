//! componentize-py, installed once per server (see
//! [`toolchain::ensure`](super::super::toolchain::ensure)): a venv of the
//! server's `python3` holding the pinned wheel, checked by its sha256.
//!
//! This is the platform's own install of a pinned artifact, so it runs
//! outside the build sandbox (no app code is involved); the venv's
//! interpreter is a link to `/usr/bin/python3`, which every build step
//! sees, so the sandboxed steps run it from the read-only toolchain.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{exit_text, io_err, BuildError, Ctx, PythonBuildError};
use crate::buildpack::show;
use crate::exec::RunError;

/// The toolchain's directory name: the package and its pinned version.
pub(super) const TOOLCHAIN: &str = "componentize-py-0.25.1";
/// The pinned requirement: the version, and the sha256 of its wheel for
/// x86_64 Linux (manylinux_2_28, abi3) as published on PyPI. pip refuses
/// any file whose hash is not listed.
const REQUIREMENT: &str = "componentize-py==0.25.1 \\\n    --hash=sha256:8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f\n";
/// Where build steps see the toolchain.
pub(super) const INSIDE: &str = "/opt/componentize-py";
/// The interpreter the venv is made from: Debian's, under `/usr`, which
/// the sandbox shows (a pyenv or a `/usr/local` Python would not be there).
const PYTHON: &str = "/usr/bin/python3";

/// The installed toolchain, installing it first if needed.
pub(super) fn ensure(ctx: &mut Ctx<'_>) -> Result<PathBuf, BuildError> {
    let dir = ctx.req.toolchains_dir.clone();
    if dir.join(TOOLCHAIN).join("venv/bin/python").exists() {
        ctx.detail(&format!("Using {TOOLCHAIN} (cached)"));
    }
    super::super::toolchain::ensure(&dir, TOOLCHAIN, |into| install(ctx, into))
}

fn install(ctx: &mut Ctx<'_>, into: &Path) -> Result<(), BuildError> {
    if !Path::new(PYTHON).is_file() {
        return Err(PythonBuildError::NoPython {
            reason: format!("{PYTHON} is missing"),
        }
        .into());
    }
    ctx.step(&format!(
        "Installing {TOOLCHAIN} (pinned by sha256; once per server)"
    ));
    let venv = into.join("venv");
    let mut cmd = Command::new(PYTHON);
    cmd.arg("-m").arg("venv").arg(&venv);
    run(ctx, cmd, &format!("{PYTHON} -m venv"))?;
    let reqs = into.join("requirements.txt");
    std::fs::write(&reqs, REQUIREMENT).map_err(io_err("writing the toolchain's requirements"))?;
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args([
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
    ])
    .args([
        "--no-cache-dir",
        "--only-binary=:all:",
        "--require-hashes",
        "-r",
    ])
    .arg(&reqs);
    run(ctx, cmd, "pip install componentize-py")
}

/// Runs an install step with a cleared environment (the server's proxy
/// and pip index settings kept), output shown indented.
fn run(ctx: &mut Ctx<'_>, mut cmd: Command, shown: &str) -> Result<(), BuildError> {
    cmd.env_clear();
    for (key, value) in std::env::vars_os() {
        let name = key.to_string_lossy().to_ascii_uppercase();
        let kept = ["PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"].contains(&name.as_str())
            || name.ends_with("_PROXY")
            || (name.starts_with("PIP_") && name != "PIP_FIND_LINKS");
        if kept {
            cmd.env(key, value);
        }
    }
    cmd.env("LANG", "C.UTF-8");
    let log = &mut *ctx.log;
    let status = crate::exec::run(cmd, ctx.deadline, &mut |_, line| show(log, line)).map_err(
        |e| match e {
            RunError::Spawn(e) if shown.contains("venv") => PythonBuildError::NoPython {
                reason: e.to_string(),
            }
            .into(),
            e => BuildError::from_run(e, ctx.req.timeout, shown),
        },
    )?;
    if status.success() {
        return Ok(());
    }
    Err(PythonBuildError::Toolchain {
        toolchain: TOOLCHAIN.into(),
        command: shown.into(),
        status: exit_text(status),
    }
    .into())
}

/// Makes `step` run componentize-py from the toolchain at `tool` (as the
/// step sees it): the venv's interpreter calling its entry point, since
/// the venv's own `bin/componentize-py` names the directory it was
/// installed in, not the one it was moved to.
pub(super) fn command(step: &mut crate::sandbox::Step, tool: &Path) {
    step.program(tool.join("venv/bin/python")).arg("-c").arg(
        "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
    );
}
