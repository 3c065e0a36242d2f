//! The Rust buildpack's compile step: `cargo build --release` for a WASI
//! target ([`crate::target`] says which), with `wpaas-sdk` resolved to the
//! platform's copy ([`crate::sdk`]), then find the `.wasm` it produced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cargo_metadata::MetadataCommand;

use crate::exec::RunError;
use crate::target::{self, Reason, WasiTarget};

mod plan;
mod sandboxed;

use plan::Plan;
pub(crate) use sandboxed::SandboxedCargo;

/// Why a crate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `Cargo.toml` could not be read.
    #[error("could not read the crate at {path}: {message}")]
    Metadata {
        /// The crate directory.
        path: PathBuf,
        /// cargo's explanation.
        message: String,
    },
    /// cargo ran and failed; its output has already been shown.
    #[error("cargo build failed (exit status {0}); see the errors above")]
    Cargo(String),
    /// The crate has nothing that builds to a `.wasm` file, or too much.
    #[error("{0}")]
    NoArtifact(String),
    /// The build's deadline passed; cargo was stopped.
    #[error("the build took too long and was stopped")]
    TimedOut,
    /// Anything else (spawning cargo, rustup).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What `wpaas up` serves from a crate it built locally.
#[derive(Debug, Clone)]
pub struct Built {
    /// The web artifact's `.wasm` file, in the crate's own target directory.
    pub wasm: PathBuf,
}

/// Builds the crate in `dir` and returns its `.wasm`. cargo's output goes
/// straight to this process's stderr, as cargo printed it.
pub fn build_crate(dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Built, BuildError> {
    let compiled = compile(dir, &CompileOptions::default(), log)?;
    match compiled.primary {
        Some(wasm) => Ok(Built { wasm }),
        None => Err(compiled
            .no_primary
            .unwrap_or_else(|| BuildError::NoArtifact("no web artifact".into()))),
    }
}

/// How [`compile`] runs cargo.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompileOptions {
    /// `CARGO_TARGET_DIR` (e.g. a per-app cache that survives builds);
    /// default: the crate's own target directory.
    pub(crate) target_dir: Option<PathBuf>,
    /// Send cargo's output line by line to `log` instead of inheriting
    /// stderr.
    pub(crate) stream: bool,
    /// Stop cargo (its whole process group) at this instant.
    pub(crate) deadline: Option<Instant>,
    /// Run cargo in the build sandbox (server builds); `None` runs it as
    /// the user would (`wpaas up`).
    pub(crate) sandbox: Option<SandboxedCargo>,
}

/// What [`compile`] produced.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The target it was built for.
    pub(crate) target: WasiTarget,
    /// Every bin/cdylib `.wasm` that was built, sorted.
    pub(crate) artifacts: Vec<PathBuf>,
    /// The web artifact: the only one, or the one named like the package.
    pub(crate) primary: Option<PathBuf>,
    /// Why there is no `primary`, when there is none.
    pub(crate) no_primary: Option<BuildError>,
}

/// Builds every bin/cdylib of the crate in `dir` for its WASI target.
pub(crate) fn compile(
    dir: &Path,
    opts: &CompileOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Compiled, BuildError> {
    let manifest = dir.join("Cargo.toml");
    if let Some(sandboxed) = &opts.sandbox {
        return sandboxed::compile(dir, &manifest, sandboxed, opts, log);
    }
    let metadata = MetadataCommand::new()
        .manifest_path(&manifest)
        .current_dir(dir)
        .no_deps()
        .exec()
        .map_err(|e| BuildError::Metadata {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    let plan = Plan::of(dir, &metadata)?;
    let target_dir = opts
        .target_dir
        .clone()
        .unwrap_or_else(|| metadata.target_directory.as_std_path().to_path_buf());
    let sdk = if plan.wants_sdk && !crate::sdk::patched_by_app(dir, None) {
        Some(
            crate::sdk::materialize(&target_dir.join("wpaas-sdk"))
                .map_err(|e| anyhow::anyhow!("could not write the platform's wpaas-sdk: {e}"))?,
        )
    } else {
        None
    };
    let mut build_for = |target: WasiTarget, log: &mut dyn FnMut(&str)| {
        target::ensure_installed(target, log)?;
        log(&plan.announce(target, "cargo build --release"));
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        // Run where the crate is, so cargo finds the config files its
        // author's own `cargo build` would.
        cmd.current_dir(dir)
            .args(["build", "--release", "--target", target.triple()])
            .arg("--manifest-path")
            .arg(&manifest);
        if let Some(sdk) = &sdk {
            cmd.arg("--config").arg(crate::sdk::patch_arg(sdk));
        }
        if let Some(dir) = &opts.target_dir {
            cmd.env("CARGO_TARGET_DIR", dir);
        }
        let status = if opts.stream || opts.deadline.is_some() {
            let deadline = opts.deadline.unwrap_or_else(|| {
                Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600)
            });
            let stream = opts.stream;
            crate::exec::run(cmd, deadline, &mut |_, line| {
                if stream {
                    log(line);
                } else {
                    eprintln!("{line}");
                }
            })
            .map_err(|e| match e {
                RunError::TimedOut => BuildError::TimedOut,
                RunError::Spawn(e) => anyhow::anyhow!("could not run cargo: {e}").into(),
            })?
        } else {
            cmd.status()
                .map_err(|e| anyhow::anyhow!("could not run cargo: {e}"))?
        };
        failed(status)?;
        let release = target_dir.join(target.triple()).join("release");
        plan.collect(target, &release, |wasm| wasm.display().to_string())
    };
    build_then_check(&plan, &mut build_for, log)
}

/// Runs cargo for one target, streaming its output lines to the log.
type BuildFor<'a> =
    dyn FnMut(WasiTarget, &mut dyn FnMut(&str)) -> Result<Compiled, BuildError> + 'a;

/// Builds for the plan's target; a plain program whose wasip1 artifact
/// turns out to import component-model interfaces (a crate written
/// against WIT bindings the manifest did not reveal) is built again for
/// wasip2, where the same imports make a component.
fn build_then_check(
    plan: &Plan,
    build_for: &mut BuildFor<'_>,
    log: &mut dyn FnMut(&str),
) -> Result<Compiled, BuildError> {
    let compiled = build_for(plan.target, log)?;
    if plan.reason != Reason::Plain || compiled.target != WasiTarget::P1 {
        return Ok(compiled);
    }
    let found = compiled
        .artifacts
        .iter()
        .find_map(|wasm| Some((wasm, target::component_import(wasm)?)));
    let Some((wasm, import)) = found else {
        return Ok(compiled);
    };
    log(&format!(
        "{} imports {import}: a component, so it is built for {}",
        wasm.file_name().unwrap_or_default().to_string_lossy(),
        WasiTarget::P2.triple()
    ));
    build_for(WasiTarget::P2, log)
}

/// cargo's exit status as a result.
fn failed(status: std::process::ExitStatus) -> Result<(), BuildError> {
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Cargo(
            status.code().map_or("signal".into(), |c| c.to_string()),
        ))
    }
}
