//! Build steps in a sandbox.
//!
//! Every step of a server-side build (a custom buildpack's `bin/detect`,
//! `bin/compile` and `bin/release`; `cargo metadata`, `cargo fetch` and
//! `cargo build` for Rust apps) runs under bubblewrap (`bwrap`):
//!
//! * new user, mount, pid, ipc, uts, cgroup and network namespaces, no
//!   further user namespaces (`--disable-userns`), `--die-with-parent`,
//!   `--new-session`, uid/gid 65534 inside (files it writes belong to the
//!   server's user outside, so the server can read and remove them);
//! * a fresh root holding only `/usr` (and the `/bin`, `/lib*` links),
//!   a few files of `/etc` (certificates, the linker's cache, the
//!   `alternatives` links, a generated `passwd`, `group`, `hosts` and
//!   `resolv.conf`), the Rust toolchain read-only at `/opt/rust`, `/dev`,
//!   `/proc`, a private tmpfs at `/tmp` and at `HOME` (`/home/build`), and the
//!   step's own directories: `/workspace` (the upload), `/build`
//!   (`BUILD_DIR`), `/cache` (the app's build cache), `/env` (`ENV_DIR`,
//!   read-only), `/buildpack` (read-only); the root itself is read-only;
//! * a cleared environment: only [`BASE_ENV`] and the step's own variables;
//! * no network, or for steps allowed it (custom buildpacks, `cargo fetch`)
//!   a network namespace of their own behind slirp4netns with the host's
//!   loopback unreachable;
//! * limits: the build's deadline (the whole process tree is killed),
//!   memory and process count (a cgroup per step when the server may create
//!   one, else a per-process data-size rlimit and no process cap), and the
//!   bytes of output shown (the rest is dropped and counted).
//!
//! When a step's first process exits, bwrap's init in the pid namespace
//! exits and the kernel kills everything left in the namespace: nothing a
//! step starts outlives it.

mod bwrap;
mod cgroup;
mod limits;
mod network;
mod run;
mod step;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cgroup::Cgroups;
pub use limits::Limits;
pub(crate) use step::Step;

/// `STACK`, as Heroku buildpacks expect one.
const STACK: &str = "wpaas";

/// Why builds cannot be sandboxed on this machine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    /// No `bwrap`.
    #[error("builds run in a bubblewrap sandbox, but bwrap is not installed; install it (apt-get install bubblewrap) and restart the server (--unsandboxed-builds skips the sandbox: development only, unsafe)")]
    NoBwrap,
    /// `bwrap` is there but cannot create the namespaces.
    #[error("builds run in a bubblewrap sandbox, but {bwrap} cannot create one here: {reason}; allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) and restart the server (--unsandboxed-builds skips the sandbox: development only, unsafe)")]
    Unusable {
        /// The bwrap binary.
        bwrap: String,
        /// What it said.
        reason: String,
    },
}

/// How build steps are run: in a sandbox (the default) or, for
/// development only, as plain child processes of the server.
#[derive(Debug, Clone)]
pub struct Sandbox {
    tools: Option<Tools>,
    limits: Limits,
}

#[derive(Debug, Clone)]
struct Tools {
    bwrap: PathBuf,
    /// slirp4netns, for steps allowed network.
    slirp: Option<PathBuf>,
    /// unshare(1), which makes a networked step's namespace.
    unshare: PathBuf,
    /// The Rust toolchain's sysroot, bound read-only at `/opt/rust` (none
    /// when there is no rustc or it lives under `/usr`).
    rust_sysroot: Option<PathBuf>,
    cgroups: Cgroups,
}

impl Sandbox {
    /// Finds bubblewrap (`WPAAS_BWRAP`, else `/usr/bin/bwrap`, else in
    /// `PATH`; and slirp4netns, the Rust toolchain, a writable cgroup
    /// hierarchy) and checks that it can create a sandbox.
    pub fn new(limits: Limits) -> Result<Self, SandboxError> {
        let bwrap = match std::env::var_os("WPAAS_BWRAP") {
            Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
            None => find_program("bwrap"),
        }
        .ok_or(SandboxError::NoBwrap)?;
        let unshare = find_program("unshare").unwrap_or_else(|| PathBuf::from("/usr/bin/unshare"));
        let tools = Tools {
            slirp: find_program("slirp4netns"),
            unshare,
            rust_sysroot: rust_sysroot(),
            cgroups: Cgroups::detect(),
            bwrap,
        };
        let sandbox = Self {
            tools: Some(tools),
            limits,
        };
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// Steps run as the server's children with a cleared environment but
    /// the server's view of the machine. Unsafe: development only.
    pub fn unsandboxed(limits: Limits) -> Self {
        Self {
            tools: None,
            limits,
        }
    }

    /// Whether steps run in a sandbox.
    pub fn is_sandboxed(&self) -> bool {
        self.tools.is_some()
    }

    /// Whether steps allowed network get it (slirp4netns is installed, or
    /// steps are not sandboxed).
    pub(crate) fn has_network(&self) -> bool {
        self.tools.as_ref().is_none_or(|t| t.slirp.is_some())
    }

    /// Whether memory and process limits are enforced by a cgroup.
    pub(crate) fn has_cgroups(&self) -> bool {
        self.tools
            .as_ref()
            .is_some_and(|t| !matches!(t.cgroups, Cgroups::None))
    }

    /// The limits of each step.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A one-line description for the server's start-up log.
    pub fn describe(&self) -> String {
        match &self.tools {
            None => "builds are NOT sandboxed (--unsandboxed-builds): build steps run as the server's user and see the whole machine".into(),
            Some(t) => format!(
                "builds run in a bubblewrap sandbox ({}; network for buildpacks: {}; memory {} MiB and {} processes per step: {})",
                t.bwrap.display(),
                if self.has_network() { "slirp4netns" } else { "none, slirp4netns is not installed" },
                self.limits.memory >> 20,
                self.limits.pids,
                if self.has_cgroups() { "cgroup" } else { "rlimit, no cgroup" }
            ),
        }
    }

    /// A step running `program` (a path inside the sandbox, or a name
    /// looked up in `PATH`).
    pub(crate) fn step(&self, program: impl Into<OsString>) -> Step {
        Step {
            sandboxed: self.is_sandboxed(),
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            binds: Vec::new(),
            env: Vec::new(),
            network: false,
        }
    }

    fn probe(&self) -> Result<(), SandboxError> {
        let Some(tools) = &self.tools else {
            return Ok(());
        };
        let mut step = self.step("true");
        step.network = false;
        let etc = tempfile::tempdir().map_err(|e| SandboxError::Unusable {
            bwrap: tools.bwrap.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut cmd = self.command(tools, &step, etc.path(), None, false);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| SandboxError::Unusable {
                bwrap: tools.bwrap.display().to_string(),
                reason: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(SandboxError::Unusable {
                bwrap: tools.bwrap.display().to_string(),
                reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// `/usr/bin/NAME`, else the first `NAME` in `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    let usr = Path::new("/usr/bin").join(name);
    if usr.is_file() {
        return Some(usr);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The sysroot of the server's Rust toolchain (`rustc --print sysroot`),
/// unless it is under `/usr` (already visible) or there is no rustc.
fn rust_sysroot() -> Option<PathBuf> {
    let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (path.is_dir() && !path.starts_with("/usr")).then_some(path)
}

#[cfg(test)]
mod tests;
