//! The compile step in the build sandbox (server builds).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cargo_metadata::MetadataCommand;

use super::plan::Plan;
use super::{failed, BuildError, CompileOptions, Compiled};
use crate::exec::{RunError, Stream};
use crate::sandbox::{Sandbox, Step};
use crate::target::{self, WasiTarget};

/// Where the platform's SDK copy is seen inside the sandbox.
const SDK_INSIDE: &str = "/wpaas-sdk";

/// Where a sandboxed cargo runs: the upload is bound read-write at
/// `/workspace`, the app's cache at `/cache` (`CARGO_HOME=/cache/cargo`,
/// `CARGO_TARGET_DIR=/cache/target`), the platform's SDK read-only at
/// `/wpaas-sdk` when the app uses it.
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
    /// `CARGO_TARGET_DIR` in the cache, and with `sdk`, the SDK's copy
    /// bound and patched in.
    fn step(&self, manifest: &Path, args: &[&str], sdk: Option<&Path>) -> Step {
        let mut step = self.sandbox.step("cargo");
        let workspace = step.bind(&self.workspace, "/workspace", true);
        let cache = step.bind(&self.cache_dir, "/cache", true);
        let rel = manifest.strip_prefix(&self.workspace).unwrap_or(manifest);
        let manifest_in = workspace.join(rel);
        for arg in args {
            step.arg(*arg);
        }
        step.arg("--manifest-path").arg(&manifest_in);
        if let Some(sdk) = sdk {
            let inside = step.bind(sdk, SDK_INSIDE, false);
            step.arg("--config").arg(crate::sdk::patch_arg(&inside));
        }
        step.env("CARGO_HOME", cache.join("cargo"))
            .env("CARGO_TARGET_DIR", cache.join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .cwd(
                manifest_in
                    .parent()
                    .map_or(workspace.clone(), Path::to_path_buf),
            );
        step
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

    /// The host directory holding SDK copies: beside the apps' caches,
    /// outside any app's (writable) cache, so no build can change it.
    fn sdk_root(&self) -> PathBuf {
        match self.cache_dir.parent() {
            Some(parent) => parent.join(".wpaas-sdk"),
            None => std::env::temp_dir().join("wpaas-sdk"),
        }
    }
}

/// Compiles in the build sandbox, in steps: `cargo metadata` (offline, no
/// network), then per target `cargo fetch` into the app's own
/// `CARGO_HOME` (network: it downloads crates and runs none of their code)
/// and `cargo build --offline` without network. The WASI target is
/// installed with rustup outside the sandbox, before the build: it is the
/// platform's toolchain, not the app's code.
pub(super) fn compile(
    dir: &Path,
    manifest: &Path,
    sandboxed: &SandboxedCargo,
    opts: &CompileOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Compiled, BuildError> {
    let deadline = opts
        .deadline
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
    let mut step = sandboxed.step(
        manifest,
        &["metadata", "--no-deps", "--format-version", "1"],
        None,
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
    if !status.success() {
        return Err(BuildError::Metadata {
            path: dir.to_path_buf(),
            message: errors.trim().to_string(),
        });
    }
    let metadata = MetadataCommand::parse(&json).map_err(|e| BuildError::Metadata {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let plan = Plan::of(dir, &metadata)?;
    let sdk = if plan.wants_sdk && !crate::sdk::patched_by_app(dir, Some(&sandboxed.workspace)) {
        Some(
            crate::sdk::materialize(&sandboxed.sdk_root())
                .map_err(|e| anyhow::anyhow!("could not write the platform's wpaas-sdk: {e}"))?,
        )
    } else {
        None
    };
    let stream = opts.stream;
    let mut build_for = |target: WasiTarget, log: &mut dyn FnMut(&str)| {
        target::ensure_installed(target, log)?;
        let mut show = |_: Stream, line: &str| {
            if stream {
                log(line);
            } else {
                eprintln!("{line}");
            }
        };
        // Config in the upload or the app's CARGO_HOME must not bring a
        // wrapper program into the step that has network.
        let mut fetch = sandboxed.step(
            manifest,
            &["fetch", "--target", target.triple()],
            sdk.as_deref(),
        );
        fetch
            .env("RUSTC_WRAPPER", "")
            .env("RUSTC_WORKSPACE_WRAPPER", "")
            .env("CARGO_BUILD_RUSTC_WRAPPER", "")
            .env("CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER", "")
            .network(true);
        failed(sandboxed.run(fetch, deadline, &mut show)?)?;
        show(
            Stream::Stderr,
            &plan.announce(target, "cargo build --release, offline"),
        );
        let mut build = sandboxed.step(
            manifest,
            &[
                "build",
                "--release",
                "--offline",
                "--target",
                target.triple(),
            ],
            sdk.as_deref(),
        );
        build.env("CARGO_NET_OFFLINE", "true");
        failed(sandboxed.run(build, deadline, &mut show)?)?;
        let release = sandboxed
            .cache_dir
            .join("target")
            .join(target.triple())
            .join("release");
        // Named as the build saw it: the host path of the cache means nothing to the user.
        plan.collect(target, &release, |wasm| {
            format!(
                "target/{}/release/{}",
                target.triple(),
                wasm.file_name().unwrap_or_default().to_string_lossy()
            )
        })
    };
    super::build_then_check(&plan, &mut build_for, log)
}
