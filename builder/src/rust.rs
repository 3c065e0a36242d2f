//! The Rust buildpack's compile step: `cargo build --release` for a WASI
//! target, then find the `.wasm` it produced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cargo_metadata::{MetadataCommand, Package, TargetKind};

use crate::exec::{RunError, Stream};
use crate::sandbox::{Sandbox, Step};
use crate::target::{self, WasiTarget};

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

/// Picks the target for a package: `[package.metadata.wpaas] target = "…"`
/// wins; otherwise a crate using an HTTP guest API (wpaas-sdk, wasi,
/// wit-bindgen, spin-sdk) is a component and a plain program is a WAGI
/// module, built for preview 1.
pub(crate) fn choose_target(package: &Package) -> WasiTarget {
    let wanted = package
        .metadata
        .get("wpaas")
        .and_then(|m| m.get("target"))
        .and_then(|t| t.as_str())
        .and_then(WasiTarget::from_triple);
    if let Some(target) = wanted {
        return target;
    }
    let component_apis = ["wpaas-sdk", "wasi", "wit-bindgen", "spin-sdk", "waki"];
    if package
        .dependencies
        .iter()
        .any(|d| component_apis.contains(&d.name.as_str()))
    {
        WasiTarget::P2
    } else {
        WasiTarget::P1
    }
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

/// Where a sandboxed cargo runs: the upload is bound read-write at
/// `/workspace`, the app's cache at `/cache` (`CARGO_HOME=/cache/cargo`,
/// `CARGO_TARGET_DIR=/cache/target`).
#[derive(Debug, Clone)]
pub(crate) struct SandboxedCargo {
    /// How steps are isolated.
    pub(crate) sandbox: Sandbox,
    /// The upload: the crate's directory or one above it.
    pub(crate) workspace: PathBuf,
    /// The app's build cache (`target_dir` must be `cache/target`).
    pub(crate) cache_dir: PathBuf,
}

impl SandboxedCargo {
    /// A cargo step: the workspace and cache bound, `CARGO_HOME` and
    /// `CARGO_TARGET_DIR` in the cache; returns it and the manifest's
    /// path as the step sees it.
    fn step(&self, manifest: &Path, args: &[&str]) -> (Step, PathBuf) {
        let mut step = self.sandbox.step("cargo");
        let workspace = step.bind(&self.workspace, "/workspace", true);
        let cache = step.bind(&self.cache_dir, "/cache", true);
        let rel = manifest.strip_prefix(&self.workspace).unwrap_or(manifest);
        let manifest_in = workspace.join(rel);
        for arg in args {
            step.arg(*arg);
        }
        step.arg("--manifest-path").arg(&manifest_in);
        step.env("CARGO_HOME", cache.join("cargo"))
            .env("CARGO_TARGET_DIR", cache.join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .cwd(
                manifest_in
                    .parent()
                    .map_or(workspace.clone(), Path::to_path_buf),
            );
        (step, manifest_in)
    }

    fn run(
        &self,
        step: Step,
        deadline: Instant,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<std::process::ExitStatus, BuildError> {
        self.sandbox
            .run(step, deadline, on_line)
            .map_err(|e| match e {
                RunError::TimedOut => BuildError::TimedOut,
                RunError::Spawn(e) => anyhow::anyhow!("could not run cargo: {e}").into(),
            })
    }
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
        return compile_sandboxed(dir, &manifest, sandboxed, opts, log);
    }
    let metadata = MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|e| BuildError::Metadata {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    let plan = Plan::of(dir, &metadata)?;
    let target = plan.target;
    target::ensure_installed(target, log)?;

    log(&format!(
        "Building {} for {} (cargo build --release)",
        plan.package,
        target.triple()
    ));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "build",
        "--release",
        "--target",
        target.triple(),
        "--manifest-path",
    ])
    .arg(&manifest);
    if let Some(dir) = &opts.target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let status = if opts.stream || opts.deadline.is_some() {
        let deadline = opts
            .deadline
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600));
        let stream = opts.stream;
        crate::exec::run(cmd, deadline, &mut |_, line| {
            if stream {
                log(line);
            } else {
                eprintln!("{line}");
            }
        })
        .map_err(|e| match e {
            crate::exec::RunError::TimedOut => BuildError::TimedOut,
            crate::exec::RunError::Spawn(e) => anyhow::anyhow!("could not run cargo: {e}").into(),
        })?
    } else {
        cmd.status()
            .map_err(|e| anyhow::anyhow!("could not run cargo: {e}"))?
    };
    if !status.success() {
        return Err(BuildError::Cargo(
            status.code().map_or("signal".into(), |c| c.to_string()),
        ));
    }
    let release = opts
        .target_dir
        .clone()
        .unwrap_or_else(|| metadata.target_directory.as_std_path().to_path_buf())
        .join(target.triple())
        .join("release");
    plan.collect(&release, |wasm| wasm.display().to_string())
}

/// [`compile`] in the build sandbox, in three steps: `cargo metadata`
/// (offline, no network), `cargo fetch` into the app's own `CARGO_HOME`
/// (network: it downloads crates and runs none of their code), then
/// `cargo build --offline` without network. The WASI target is installed
/// with rustup outside the sandbox, before the build: it is the
/// platform's toolchain, not the app's code.
fn compile_sandboxed(
    dir: &Path,
    manifest: &Path,
    sandboxed: &SandboxedCargo,
    opts: &CompileOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Compiled, BuildError> {
    let deadline = opts
        .deadline
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
    let (mut step, _) = sandboxed.step(
        manifest,
        &["metadata", "--no-deps", "--format-version", "1"],
    );
    step.env("CARGO_NET_OFFLINE", "true");
    let mut json = String::new();
    let mut errors = String::new();
    let status = sandboxed.run(step, deadline, &mut |stream, line| match stream {
        Stream::Stdout => {
            json.push_str(line);
            json.push('\n');
        }
        Stream::Stderr => {
            errors.push_str(line.trim_start_matches("error: "));
            errors.push(' ');
        }
    })?;
    let metadata = if status.success() {
        MetadataCommand::parse(&json).map_err(|e| BuildError::Metadata {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?
    } else {
        return Err(BuildError::Metadata {
            path: dir.to_path_buf(),
            message: errors.trim().to_string(),
        });
    };
    let plan = Plan::of(dir, &metadata)?;
    let target = plan.target;
    target::ensure_installed(target, log)?;

    let stream = opts.stream;
    let mut show = |_: Stream, line: &str| {
        if stream {
            log(line);
        } else {
            eprintln!("{line}");
        }
    };
    // Config in the upload or the app's CARGO_HOME must not bring a
    // wrapper program into the step that has network.
    let (mut fetch, _) = sandboxed.step(manifest, &["fetch", "--target", target.triple()]);
    fetch
        .env("RUSTC_WRAPPER", "")
        .env("RUSTC_WORKSPACE_WRAPPER", "")
        .env("CARGO_BUILD_RUSTC_WRAPPER", "")
        .env("CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER", "")
        .network(true);
    let status = sandboxed.run(fetch, deadline, &mut show)?;
    if !status.success() {
        return Err(BuildError::Cargo(
            status.code().map_or("signal".into(), |c| c.to_string()),
        ));
    }
    show(
        Stream::Stderr,
        &format!(
            "Building {} for {} (cargo build --release, offline)",
            plan.package,
            target.triple()
        ),
    );
    let (mut build, _) = sandboxed.step(
        manifest,
        &[
            "build",
            "--release",
            "--offline",
            "--target",
            target.triple(),
        ],
    );
    build.env("CARGO_NET_OFFLINE", "true");
    let status = sandboxed.run(build, deadline, &mut show)?;
    if !status.success() {
        return Err(BuildError::Cargo(
            status.code().map_or("signal".into(), |c| c.to_string()),
        ));
    }
    let release = sandboxed
        .cache_dir
        .join("target")
        .join(target.triple())
        .join("release");
    // Named as the build saw it: the host path of the cache means nothing to the user.
    plan.collect(&release, |wasm| {
        format!(
            "target/{}/release/{}",
            target.triple(),
            wasm.file_name().unwrap_or_default().to_string_lossy()
        )
    })
}

/// What a crate's metadata says to build: its WASI target and the `.wasm`
/// files cargo will produce (the same for sandboxed and local builds).
struct Plan {
    package: String,
    target: WasiTarget,
    stems: Vec<String>,
    primary_stem: Option<String>,
    no_primary: Option<BuildError>,
}

impl Plan {
    fn of(dir: &Path, metadata: &cargo_metadata::Metadata) -> Result<Plan, BuildError> {
        let package = metadata.root_package().ok_or_else(|| {
            BuildError::NoArtifact(format!(
                "{} is a workspace without a root package; point at one member crate",
                dir.display()
            ))
        })?;
        let stems = artifact_stems(package);
        if stems.is_empty() {
            return Err(BuildError::NoArtifact(format!(
                "crate `{}` has no binary or cdylib target to build into .wasm",
                package.name
            )));
        }
        let (primary_stem, no_primary) = match pick_artifact(package) {
            Ok(stem) => (Some(stem), None),
            Err(e) => (None, Some(e)),
        };
        Ok(Plan {
            package: package.name.to_string(),
            target: choose_target(package),
            stems,
            primary_stem,
            no_primary,
        })
    }

    /// The built artifacts in cargo's `release` directory; a missing one is
    /// reported with `shown(path)`.
    fn collect(
        self,
        release: &Path,
        shown: impl Fn(&Path) -> String,
    ) -> Result<Compiled, BuildError> {
        let mut artifacts = Vec::new();
        for stem in &self.stems {
            let wasm = release.join(format!("{stem}.wasm"));
            if !wasm.exists() {
                return Err(BuildError::NoArtifact(format!(
                    "cargo succeeded but {} is missing",
                    shown(&wasm)
                )));
            }
            artifacts.push(wasm);
        }
        artifacts.sort();
        Ok(Compiled {
            target: self.target,
            artifacts,
            primary: self
                .primary_stem
                .map(|stem| release.join(format!("{stem}.wasm"))),
            no_primary: self.no_primary,
        })
    }
}

/// The `.wasm` file stems of every bin and cdylib target.
fn artifact_stems(package: &Package) -> Vec<String> {
    wasm_targets(package).map(wasm_stem).collect()
}

/// The package's targets that build to a `.wasm`: bins and cdylibs.
fn wasm_targets(package: &Package) -> impl Iterator<Item = &cargo_metadata::Target> {
    package.targets.iter().filter(|t| {
        t.kind
            .iter()
            .any(|k| matches!(k, TargetKind::Bin | TargetKind::CDyLib))
    })
}

/// The file stem cargo gives a target's `.wasm` (cdylibs use underscores).
fn wasm_stem(target: &cargo_metadata::Target) -> String {
    if target.kind.iter().any(|k| matches!(k, TargetKind::CDyLib)) {
        target.name.replace('-', "_")
    } else {
        target.name.clone()
    }
}

/// The file stem of the package's web artifact: its only bin or cdylib, or
/// the one named like the package.
fn pick_artifact(package: &Package) -> Result<String, BuildError> {
    let candidates: Vec<_> = wasm_targets(package).collect();
    let chosen = match candidates.as_slice() {
        [] => {
            return Err(BuildError::NoArtifact(format!(
                "crate `{}` has no binary or cdylib target to build into .wasm",
                package.name
            )))
        }
        [only] => *only,
        many => many
            .iter()
            .find(|t| t.name == package.name.as_str())
            .copied()
            .ok_or_else(|| {
                let names: Vec<_> = many.iter().map(|t| t.name.as_str()).collect();
                BuildError::NoArtifact(format!(
                    "crate `{}` has several targets ({}); serve the .wasm you want directly",
                    package.name,
                    names.join(", ")
                ))
            })?,
    };
    Ok(wasm_stem(chosen))
}
