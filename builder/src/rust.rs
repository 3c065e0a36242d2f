//! The Rust buildpack's compile step: `cargo build --release` for a WASI
//! target, then find the `.wasm` it produced.

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{MetadataCommand, Package, TargetKind};

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
    /// Anything else (spawning cargo, rustup).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A built artifact.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `.wasm` file.
    pub wasm: PathBuf,
    /// The target it was built for.
    pub target: WasiTarget,
}

/// Picks the target for a package: `[package.metadata.wpaas] target = "…"`
/// wins; otherwise a crate using an HTTP guest API (wpaas-sdk, wasi,
/// wit-bindgen, spin-sdk) is a component and a plain program is a WAGI
/// module, built for preview 1.
pub fn choose_target(package: &Package) -> WasiTarget {
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
    let manifest = dir.join("Cargo.toml");
    let metadata = MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|e| BuildError::Metadata {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    let package = metadata.root_package().ok_or_else(|| {
        BuildError::NoArtifact(format!(
            "{} is a workspace without a root package; point at one member crate",
            dir.display()
        ))
    })?;
    let target = choose_target(package);
    let artifact_name = pick_artifact(package)?;
    target::ensure_installed(target, log)?;

    log(&format!(
        "Building {} for {} (cargo build --release)",
        package.name,
        target.triple()
    ));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            target.triple(),
            "--manifest-path",
        ])
        .arg(&manifest)
        .status()
        .map_err(|e| anyhow::anyhow!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err(BuildError::Cargo(
            status.code().map_or("signal".into(), |c| c.to_string()),
        ));
    }
    let wasm = metadata
        .target_directory
        .as_std_path()
        .join(target.triple())
        .join("release")
        .join(format!("{artifact_name}.wasm"));
    if !wasm.exists() {
        return Err(BuildError::NoArtifact(format!(
            "cargo succeeded but {} is missing",
            wasm.display()
        )));
    }
    Ok(Built { wasm, target })
}

/// The file stem of the package's web artifact: its only bin or cdylib, or
/// the one named like the package.
fn pick_artifact(package: &Package) -> Result<String, BuildError> {
    let candidates: Vec<_> = package
        .targets
        .iter()
        .filter(|t| {
            t.kind
                .iter()
                .any(|k| matches!(k, TargetKind::Bin | TargetKind::CDyLib))
        })
        .collect();
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
    let is_lib = chosen.kind.iter().any(|k| matches!(k, TargetKind::CDyLib));
    Ok(if is_lib {
        chosen.name.replace('-', "_")
    } else {
        chosen.name.clone()
    })
}
