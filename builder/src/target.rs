//! WebAssembly compilation targets: which one a crate is built for, and
//! installing them with rustup.
//!
//! A crate is built for `wasm32-wasip2` (a component) when its manifest
//! says it is one — `[package.metadata.wpaas] target`, `cargo component`'s
//! `[package.metadata.component]`, or a dependency that only makes sense in
//! a component (wit-bindgen, wstd, …) — and for `wasm32-wasip1` (a core
//! module: a WAGI program, a command with exit codes) otherwise. A name
//! list cannot know every crate, so the artifact decides too: a wasip1
//! build whose module imports component-model interfaces
//! (`wasi:io/error@0.2.0`) is a component written against WIT bindings,
//! and is built again for wasip2 ([`component_import`]).

use std::path::Path;
use std::process::Command;

use cargo_metadata::Package;

/// The two WASI targets wpaas builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiTarget {
    /// Components (`wasi:http/proxy`, commands): `wasm32-wasip2`.
    P2,
    /// Core modules (WAGI programs): `wasm32-wasip1`.
    P1,
}

impl WasiTarget {
    /// The rustc target triple.
    pub fn triple(self) -> &'static str {
        match self {
            WasiTarget::P2 => "wasm32-wasip2",
            WasiTarget::P1 => "wasm32-wasip1",
        }
    }

    /// Parses a triple as written in `[package.metadata.wpaas] target`.
    pub fn from_triple(triple: &str) -> Option<Self> {
        match triple {
            "wasm32-wasip2" => Some(WasiTarget::P2),
            "wasm32-wasip1" => Some(WasiTarget::P1),
            _ => None,
        }
    }
}

/// Why a crate gets its target (said in the build log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `[package.metadata.wpaas] target = "…"`: never second-guessed.
    Declared,
    /// The manifest shows a component (the text says how).
    Component(String),
    /// Nothing says component: a plain program, built for preview 1
    /// unless its artifact turns out to be a component.
    Plain,
}

/// The target a package is built for first, and why.
pub(crate) fn choose(package: &Package) -> (WasiTarget, Reason) {
    let declared = package
        .metadata
        .get("wpaas")
        .and_then(|m| m.get("target"))
        .and_then(|t| t.as_str())
        .and_then(WasiTarget::from_triple);
    if let Some(target) = declared {
        return (target, Reason::Declared);
    }
    if package.metadata.get("component").is_some() {
        return (
            WasiTarget::P2,
            Reason::Component("[package.metadata.component] (cargo component)".into()),
        );
    }
    match package.dependencies.iter().find(|d| is_component_api(d)) {
        Some(dep) => (
            WasiTarget::P2,
            Reason::Component(format!("depends on {}", dep.name)),
        ),
        None => (WasiTarget::P1, Reason::Plain),
    }
}

/// Dependencies that make a crate a component: WIT bindings and their
/// runtimes, and SDKs written on them.
const COMPONENT_APIS: &[&str] = &[
    crate::sdk::NAME,
    "wit-bindgen",
    "wit-bindgen-rt",
    "cargo-component-bindings",
    "wasip2",
    "wstd",
    "waki",
    "spin-sdk",
];

fn is_component_api(dep: &cargo_metadata::Dependency) -> bool {
    if dep.kind != cargo_metadata::DependencyKind::Normal {
        return false;
    }
    if COMPONENT_APIS.contains(&dep.name.as_str()) {
        return true;
    }
    // `wasi` 0.12 and later are WASI 0.2 bindings; 0.11 and older are the
    // preview 1 ones a plain program may use.
    dep.name == "wasi"
        && dep
            .req
            .comparators
            .first()
            .is_none_or(|c| c.major > 0 || c.minor.is_none_or(|minor| minor >= 12))
}

/// The first component-model interface a core module imports
/// (`wasi:io/error@0.2.0`), or the `component-type` custom section
/// wit-bindgen leaves in it; `None` for a plain module (or a file that is
/// not one: let loading it say what is wrong).
pub(crate) fn component_import(wasm: &Path) -> Option<String> {
    let bytes = std::fs::read(wasm).ok()?;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.ok()? {
            wasmparser::Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let module = import.ok()?.module;
                    if is_interface_name(module) {
                        return Some(module.to_string());
                    }
                }
            }
            wasmparser::Payload::CustomSection(section)
                if section.name().starts_with("component-type") =>
            {
                return Some(format!("custom section {}", section.name()));
            }
            _ => {}
        }
    }
    None
}

/// `namespace:package/interface[@version]`, the way component-model
/// imports are named in a core module (preview 1's are
/// `wasi_snapshot_preview1`, WAGI's plain words).
fn is_interface_name(module: &str) -> bool {
    let module = module.strip_prefix("[export]").unwrap_or(module);
    let Some((package, interface)) = module.split_once('/') else {
        return false;
    };
    let Some((namespace, name)) = package.split_once(':') else {
        return false;
    };
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    word(namespace) && word(name) && !interface.is_empty()
}

/// Installs `target` with rustup unless the toolchain already has it.
/// A buildpack fetches its own compiler, so a fresh machine just works.
pub fn ensure_installed(target: WasiTarget, log: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let installed = match installed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        // No rustup (e.g. a distro toolchain): let cargo report what is missing.
        _ => return Ok(()),
    };
    if installed.lines().any(|l| l.trim() == target.triple()) {
        return Ok(());
    }
    log(&format!("Installing Rust target {}", target.triple()));
    let status = Command::new("rustup")
        .args(["target", "add", target.triple()])
        .status()?;
    anyhow::ensure!(
        status.success(),
        "`rustup target add {}` failed; install it by hand and retry",
        target.triple()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_recognised() {
        for name in [
            "wasi:io/error@0.2.0",
            "wasi:http/types@0.2.6",
            "[export]wasi:http/incoming-handler@0.2.0",
            "fermyon:spin/http",
        ] {
            assert!(is_interface_name(name), "{name}");
        }
        for name in ["wasi_snapshot_preview1", "env", "wasi:io", "a/b", ":x/y"] {
            assert!(!is_interface_name(name), "{name}");
        }
    }

    fn module(wat: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), wat::parse_str(wat).unwrap()).unwrap();
        file
    }

    #[test]
    fn a_module_importing_wit_interfaces_is_a_component() {
        let wasm = module(
            r#"(module
              (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
              (import "wasi:io/error@0.2.0" "[resource-drop]error" (func (param i32))))"#,
        );
        assert_eq!(
            component_import(wasm.path()).as_deref(),
            Some("wasi:io/error@0.2.0")
        );
        let plain =
            module(r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#);
        assert_eq!(component_import(plain.path()), None);
        let garbage = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(garbage.path(), b"not wasm").unwrap();
        assert_eq!(component_import(garbage.path()), None);
    }

    fn package(manifest_extra: &str, deps: &[(&str, &str)]) -> Package {
        let deps: Vec<_> = deps
            .iter()
            .map(|(name, req)| {
                serde_json::json!({
                    "name": name, "req": req, "kind": null, "optional": false,
                    "uses_default_features": true, "features": [], "target": null,
                    "rename": null, "registry": null, "source": null
                })
            })
            .collect();
        let metadata: serde_json::Value = if manifest_extra.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(manifest_extra).unwrap()
        };
        serde_json::from_value(serde_json::json!({
            "name": "app", "version": "0.1.0", "id": "app 0.1.0", "license": null,
            "license_file": null, "description": null, "source": null,
            "dependencies": deps, "targets": [], "features": {},
            "manifest_path": "/app/Cargo.toml", "metadata": metadata,
            "publish": null, "authors": [], "categories": [], "keywords": [],
            "readme": null, "repository": null, "homepage": null,
            "documentation": null, "edition": "2021", "links": null,
            "default_run": null, "rust_version": null
        }))
        .unwrap()
    }

    #[test]
    fn the_manifest_picks_the_first_target() {
        let cases = [
            ("", vec![], WasiTarget::P1),
            ("", vec![("wpaas-sdk", "^0.1")], WasiTarget::P2),
            ("", vec![("wit-bindgen-rt", "^0.35.0")], WasiTarget::P2),
            ("", vec![("wstd", "^0.5")], WasiTarget::P2),
            ("", vec![("wasi", "^0.14")], WasiTarget::P2),
            ("", vec![("wasi", "^0.11")], WasiTarget::P1),
            ("", vec![("serde", "^1")], WasiTarget::P1),
            (
                r#"{"component": {"package": "component:x"}}"#,
                vec![],
                WasiTarget::P2,
            ),
            (
                r#"{"wpaas": {"target": "wasm32-wasip1"}}"#,
                vec![("wpaas-sdk", "^0.1")],
                WasiTarget::P1,
            ),
        ];
        for (metadata, deps, want) in cases {
            let (got, _) = choose(&package(metadata, &deps));
            assert_eq!(got, want, "{metadata} {deps:?}");
        }
        let (_, why) = choose(&package(r#"{"wpaas": {"target": "wasm32-wasip2"}}"#, &[]));
        assert_eq!(why, Reason::Declared);
    }
}
