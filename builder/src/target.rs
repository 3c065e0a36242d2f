//! WebAssembly compilation targets and installing them with rustup.

use std::process::Command;

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
