//! Running one step: in the sandbox with its network and cgroup set up
//! and taken down around it, or plainly when builds are unsandboxed.

use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Instant;

use super::network::NetSetup;
use super::{Sandbox, Step, STACK};
use crate::exec::{self, RunError, Stream};

impl Sandbox {
    /// Runs `step` until it exits or `deadline` passes, calling `on_line`
    /// for each line of output (at most [`Limits::output`](super::Limits::output) bytes of them).
    pub(crate) fn run(
        &self,
        step: Step,
        deadline: Instant,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExitStatus, RunError> {
        let max_output = self.limits.output;
        let Some(tools) = &self.tools else {
            let mut cmd = Command::new(&step.program);
            cmd.args(&step.args).env_clear();
            for key in ["PATH", "HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO"] {
                if let Some(value) = std::env::var_os(key) {
                    cmd.env(key, value);
                }
            }
            cmd.env("TMPDIR", std::env::temp_dir())
                .env("LANG", "C.UTF-8")
                .env("STACK", STACK);
            for (key, value) in &step.env {
                cmd.env(key, value);
            }
            if let Some(cwd) = &step.cwd {
                cmd.current_dir(cwd);
            }
            return exec::run_with(cmd, deadline, max_output, &mut |_| Ok(()), on_line);
        };
        let etc = tempfile::Builder::new()
            .prefix("wpaas-sandbox-")
            .tempdir()
            .map_err(RunError::Spawn)?;
        let network = step.network && tools.slirp.is_some();
        if step.network && !network {
            on_line(
                Stream::Stderr,
                "       (no network in this step: slirp4netns is not installed on the server)",
            );
        }
        let cgroup = match tools.cgroups.create(&self.limits) {
            Ok(cgroup) => cgroup,
            Err(e) => {
                tracing_warn(&format!("could not create a cgroup for a build step: {e}"));
                None
            }
        };
        let mut cmd = self.command(tools, &step, etc.path(), cgroup.as_ref(), network);
        die_with_parent(&mut cmd);
        let mut net = NetSetup::default();
        if network {
            net.prepare(&mut cmd).map_err(RunError::Spawn)?;
        }
        let slirp = tools.slirp.clone();
        let result = exec::run_with(
            cmd,
            deadline,
            max_output,
            &mut |child| {
                if network {
                    net.start(child, slirp.as_deref().unwrap_or(Path::new("slirp4netns")))
                } else {
                    Ok(())
                }
            },
            on_line,
        );
        net.stop();
        if let Some(cgroup) = cgroup {
            if let Some(what) = cgroup.exceeded() {
                on_line(
                    Stream::Stderr,
                    &format!(
                        "       The build step hit its {what} (memory {} MiB, {} processes)",
                        self.limits.memory >> 20,
                        self.limits.pids
                    ),
                );
            }
            cgroup.remove();
        }
        result
    }
}

fn tracing_warn(message: &str) {
    eprintln!("wpaas: {message}");
}

/// The step's outer process (bwrap, whose sandbox already dies with it)
/// is killed if the server thread running the step goes away, e.g. when
/// the server is killed mid-build.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let server = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl.
            if libc::getppid() != server {
                return Err(io::Error::other("the server went away"));
            }
            Ok(())
        });
    }
}
