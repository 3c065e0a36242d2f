//! What a crate's metadata says to build: its WASI target, the `.wasm`
//! files cargo will produce, and whether it takes the platform's SDK (the
//! same for sandboxed and local builds).

use std::path::Path;

use cargo_metadata::{Package, TargetKind};

use super::{BuildError, Compiled};
use crate::target::{self, Reason, WasiTarget};

/// The plan of one crate's build.
pub(super) struct Plan {
    pub(super) package: String,
    /// The target built first.
    pub(super) target: WasiTarget,
    /// Why: a plain program may still be rebuilt as a component.
    pub(super) reason: Reason,
    stems: Vec<String>,
    primary_stem: Option<String>,
    no_primary: Option<String>,
    /// Some member depends on `wpaas-sdk` from crates.io.
    pub(super) wants_sdk: bool,
}

impl Plan {
    pub(super) fn of(dir: &Path, metadata: &cargo_metadata::Metadata) -> Result<Plan, BuildError> {
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
        let wants_sdk = metadata.workspace_packages().iter().any(|p| {
            p.dependencies
                .iter()
                .any(|d| d.name == crate::sdk::NAME && d.path.is_none() && d.registry.is_none())
        });
        let (target, reason) = target::choose(package);
        Ok(Plan {
            package: package.name.to_string(),
            target,
            reason,
            stems,
            primary_stem,
            no_primary,
            wants_sdk,
        })
    }

    /// The line announcing the build for `target`.
    pub(super) fn announce(&self, target: WasiTarget, how: &str) -> String {
        let why = match (&self.reason, target) {
            (Reason::Declared, _) => " ([package.metadata.wpaas] target)".to_string(),
            (Reason::Component(why), WasiTarget::P2) => format!(" (a component: {why})"),
            _ => String::new(),
        };
        format!(
            "Building {} for {}{why} ({how})",
            self.package,
            target.triple()
        )
    }

    /// The built artifacts in cargo's `release` directory for `target`; a
    /// missing one is reported with `shown(path)`.
    pub(super) fn collect(
        &self,
        target: WasiTarget,
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
            target,
            artifacts,
            primary: self
                .primary_stem
                .as_ref()
                .map(|stem| release.join(format!("{stem}.wasm"))),
            no_primary: self.no_primary.clone().map(BuildError::NoArtifact),
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
/// the one named like the package; else why not.
fn pick_artifact(package: &Package) -> Result<String, String> {
    let candidates: Vec<_> = wasm_targets(package).collect();
    let chosen = match candidates.as_slice() {
        [] => {
            return Err(format!(
                "crate `{}` has no binary or cdylib target to build into .wasm",
                package.name
            ))
        }
        [only] => *only,
        many => many
            .iter()
            .find(|t| t.name == package.name.as_str())
            .copied()
            .ok_or_else(|| {
                let names: Vec<_> = many.iter().map(|t| t.name.as_str()).collect();
                format!(
                    "crate `{}` has several targets ({}); serve the .wasm you want directly",
                    package.name,
                    names.join(", ")
                )
            })?,
    };
    Ok(wasm_stem(chosen))
}
