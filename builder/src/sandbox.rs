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

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::exec::{self, RunError, Stream};

/// Default memory limit of a build step (all its processes together when
/// cgroups are available).
const DEFAULT_MEMORY: u64 = 4 << 30;
/// Default cap on the processes and threads of a build step (cgroups only).
const DEFAULT_PIDS: u64 = 1024;
/// Default cap on the bytes of output a build step may show.
const DEFAULT_OUTPUT: u64 = 8 << 20;

/// The uid and gid a step runs as inside its sandbox.
const BUILD_UID: u32 = 65534;

/// The `PATH` inside the sandbox.
const SANDBOX_PATH: &str = "/opt/rust/bin:/usr/local/bin:/usr/bin:/bin";
/// `HOME` inside the sandbox.
const SANDBOX_HOME: &str = "/home/build";
/// `STACK`, as Heroku buildpacks expect one.
const STACK: &str = "wpaas";

/// Limits on one build step, so one app's build cannot starve the server
/// or flood its log. `Default` gives 4 GiB, 1024 processes and 8 MiB of
/// output (`wpaas server --build-memory` sets the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory, for all the step's processes together when cgroups
    /// are available (else a per-process data-size rlimit).
    pub memory: u64,
    /// Processes and threads; enforced only with cgroups.
    pub pids: u64,
    /// Bytes of output shown; the rest is dropped and counted.
    pub output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: DEFAULT_MEMORY,
            pids: DEFAULT_PIDS,
            output: DEFAULT_OUTPUT,
        }
    }
}

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

    /// Runs `step` until it exits or `deadline` passes, calling `on_line`
    /// for each line of output (at most [`Limits::output`] bytes of them).
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

    /// The `sh -c '…; exec bwrap …'` command for `step`.
    fn command(
        &self,
        tools: &Tools,
        step: &Step,
        etc: &Path,
        cgroup: Option<&Cgroup>,
        network: bool,
    ) -> Command {
        // A shell moves itself into the step's cgroups (so every process
        // bwrap starts is in them from the start), sets the fallback
        // rlimit, then becomes bwrap.
        let mut script = String::from("set -e; ");
        match cgroup {
            Some(cgroup) => {
                for procs in cgroup.procs_files() {
                    script.push_str(&format!("echo $$ > {}; ", sh_quote(&procs)));
                }
            }
            None => script.push_str(&format!("ulimit -d {}; ", self.limits.memory / 1024)),
        }
        if network {
            // The step's network namespace is made here, by the server's
            // user, so slirp4netns can join it; bwrap then keeps it. The
            // shell says it is there on fd 3 and waits on fd 4 for
            // slirp4netns to be ready.
            script.push_str(&format!(
                "exec {} --net -- /bin/sh -c 'echo ready >&3; exec 3>&-; read _ <&4; exec 4<&-; exec \"$@\"' sh \"$@\"",
                sh_quote(&tools.unshare)
            ));
        } else {
            script.push_str("exec \"$@\"");
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.env_clear()
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&tools.bwrap);

        let _ = write_etc(etc, network);
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |parts: &[&dyn AsRef<std::ffi::OsStr>]| {
            for p in parts {
                args.push(p.as_ref().to_os_string());
            }
        };
        push(&[
            &"--unshare-user",
            &"--unshare-pid",
            &"--unshare-ipc",
            &"--unshare-uts",
            &"--unshare-cgroup-try",
            &"--disable-userns",
            &"--die-with-parent",
            &"--new-session",
            &"--uid",
            &BUILD_UID.to_string(),
            &"--gid",
            &BUILD_UID.to_string(),
            &"--hostname",
            &"build",
            &"--ro-bind",
            &"/usr",
            &"/usr",
        ]);
        if !network {
            push(&[&"--unshare-net"]);
        }
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match fs::symlink_metadata(dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = fs::read_link(dir) {
                        push(&[&"--symlink", &target, &dir]);
                    }
                }
                Ok(m) if m.is_dir() => push(&[&"--ro-bind", &dir, &dir]),
                _ => {}
            }
        }
        for path in [
            "/etc/ssl",
            "/etc/ca-certificates",
            "/etc/alternatives",
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/localtime",
            "/etc/protocols",
            "/etc/services",
        ] {
            push(&[&"--ro-bind-try", &path, &path]);
        }
        for name in ["passwd", "group", "hosts", "nsswitch.conf", "resolv.conf"] {
            push(&[&"--ro-bind", &etc.join(name), &Path::new("/etc").join(name)]);
        }
        if let Some(sysroot) = &tools.rust_sysroot {
            push(&[&"--ro-bind", sysroot, &"/opt/rust"]);
        }
        let tmp_size = (self.limits.memory / 2).max(64 << 20).to_string();
        push(&[
            &"--dev",
            &"/dev",
            &"--proc",
            &"/proc",
            &"--size",
            &tmp_size,
            &"--tmpfs",
            &"/tmp",
            &"--size",
            &tmp_size,
            &"--tmpfs",
            &SANDBOX_HOME,
        ]);
        for bind in &step.binds {
            let kind = if bind.writable { "--bind" } else { "--ro-bind" };
            push(&[&kind, &bind.host, &bind.inside]);
        }
        push(&[&"--remount-ro", &"/"]);
        if let Some(cwd) = &step.cwd {
            push(&[&"--chdir", cwd]);
        } else {
            push(&[&"--chdir", &SANDBOX_HOME]);
        }
        push(&[&"--clearenv"]);
        let base = [
            ("PATH", SANDBOX_PATH),
            ("HOME", SANDBOX_HOME),
            ("TMPDIR", "/tmp"),
            ("LANG", "C.UTF-8"),
            ("STACK", STACK),
        ];
        for (key, value) in base {
            push(&[&"--setenv", &key, &value]);
        }
        for (key, value) in &step.env {
            push(&[&"--setenv", key, value]);
        }
        push(&[&"--", &step.program]);
        for arg in &step.args {
            push(&[arg]);
        }
        cmd.args(args);
        cmd
    }
}

/// One build step: a program, its arguments, and what it may see.
pub(crate) struct Step {
    sandboxed: bool,
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    binds: Vec<Bind>,
    env: Vec<(String, OsString)>,
    network: bool,
}

struct Bind {
    host: PathBuf,
    inside: PathBuf,
    writable: bool,
}

impl Step {
    /// Makes the host directory `host` visible at `inside`; returns the
    /// path the step sees it at (the host path when not sandboxed).
    pub(crate) fn bind(&mut self, host: &Path, inside: &str, writable: bool) -> PathBuf {
        self.binds.push(Bind {
            host: host.to_path_buf(),
            inside: PathBuf::from(inside),
            writable,
        });
        if self.sandboxed {
            PathBuf::from(inside)
        } else {
            host.to_path_buf()
        }
    }

    /// Sets the program (a path the step sees, or a name in `PATH`).
    pub(crate) fn program(&mut self, program: impl Into<OsString>) -> &mut Self {
        self.program = program.into();
        self
    }

    /// Appends an argument.
    pub(crate) fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Runs the step in `dir` (a path the step sees, from [`Step::bind`]).
    pub(crate) fn cwd(&mut self, dir: PathBuf) -> &mut Self {
        self.cwd = Some(dir);
        self
    }

    /// Sets an environment variable.
    pub(crate) fn env(&mut self, key: &str, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Lets the step reach the network (not the host's loopback).
    pub(crate) fn network(&mut self, allowed: bool) -> &mut Self {
        self.network = allowed;
        self
    }
}

fn tracing_warn(message: &str) {
    eprintln!("wpaas: {message}");
}

/// Single-quotes `path` for sh.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
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

/// The generated files of the sandbox's `/etc`.
fn write_etc(dir: &Path, network: bool) -> io::Result<()> {
    let uid = BUILD_UID;
    fs::write(
        dir.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nbuild:x:{uid}:{uid}:build:{SANDBOX_HOME}:/bin/sh\n"
        ),
    )?;
    fs::write(dir.join("group"), format!("root:x:0:\nbuild:x:{uid}:\n"))?;
    fs::write(
        dir.join("hosts"),
        "127.0.0.1 localhost build\n::1 localhost\n",
    )?;
    fs::write(
        dir.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    // slirp4netns answers DNS at 10.0.2.3.
    let resolv = if network { "nameserver 10.0.2.3\n" } else { "" };
    fs::write(dir.join("resolv.conf"), resolv)?;
    Ok(())
}

/// A step's own network namespace, plugged into slirp4netns: the step's
/// shell makes it (`unshare --net`), says so on fd 3 and waits for a byte
/// on fd 4 before it becomes bwrap.
#[derive(Default)]
struct NetSetup {
    info_read: Option<fs::File>,
    block_write: Option<fs::File>,
    child_ends: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    slirp: Option<Child>,
    exit_write: Option<fs::File>,
}

impl NetSetup {
    #[allow(unsafe_code)]
    fn prepare(&mut self, cmd: &mut Command) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (info_r, info_w) = pipe()?;
        let (block_r, block_w) = pipe()?;
        let (iw, br) = (info_w.as_raw_fd(), block_r.as_raw_fd());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork
        // and exec.
        unsafe {
            cmd.pre_exec(move || move_fds(iw, br));
        }
        self.info_read = Some(fs::File::from(info_r));
        self.block_write = Some(fs::File::from(block_w));
        self.child_ends = Some((info_w, block_r));
        Ok(())
    }

    #[allow(unsafe_code)]
    fn start(&mut self, child: &Child, slirp: &Path) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        // Our copies of the child's ends: closed, so EOF means it is gone.
        self.child_ends = None;
        let mut said = String::new();
        if let Some(r) = self.info_read.take() {
            let _ = r.take(64).read_to_string(&mut said);
        }
        if !said.starts_with("ready") {
            return Err(io::Error::other(
                "the build step exited before its network was set up",
            ));
        }
        let pid = child.id();
        let (ready_r, ready_w) = pipe()?;
        let (exit_r, exit_w) = pipe()?;
        let (rw, er) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
        let mut cmd = Command::new(slirp);
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--ready-fd=3",
            "--exit-fd=4",
        ])
        .arg(pid.to_string())
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: as above.
        unsafe {
            cmd.pre_exec(move || move_fds(rw, er));
        }
        self.slirp = Some(cmd.spawn()?);
        drop(ready_w);
        drop(exit_r);
        self.exit_write = Some(fs::File::from(exit_w));
        let mut ready = fs::File::from(ready_r);
        let mut byte = [0u8; 1];
        if ready.read(&mut byte)? == 0 {
            return Err(io::Error::other("slirp4netns could not set up the network"));
        }
        if let Some(mut w) = self.block_write.take() {
            w.write_all(b"1")?;
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.exit_write = None;
        if let Some(mut slirp) = self.slirp.take() {
            let _ = slirp.kill();
            let _ = slirp.wait();
        }
    }
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

#[allow(unsafe_code)]
fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors we now own.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// In a forked child: makes `a` fd 3 and `b` fd 4, inherited by exec.
#[allow(unsafe_code)]
fn move_fds(a: libc::c_int, b: libc::c_int) -> io::Result<()> {
    // SAFETY: plain descriptor calls. Both are first copied above 10 so
    // that neither overwrites the other when it already is 3 or 4.
    unsafe {
        let a = libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 10);
        let b = libc::fcntl(b, libc::F_DUPFD_CLOEXEC, 10);
        if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Where per-step cgroups can be made.
#[derive(Debug, Clone)]
enum Cgroups {
    /// cgroup v1: the server's own memory and pids cgroups.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
    },
    /// cgroup v2: the server's own cgroup, with memory and pids enabled
    /// for its children.
    V2 {
        base: PathBuf,
    },
    None,
}

static NEXT_CGROUP: AtomicU64 = AtomicU64::new(0);

impl Cgroups {
    fn detect() -> Self {
        let Ok(own) = fs::read_to_string("/proc/self/cgroup") else {
            return Cgroups::None;
        };
        let mut v1_memory = None;
        let mut v1_pids = None;
        let mut v2 = None;
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => continue,
            };
            let rel = path.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "memory") {
                v1_memory = Some(Path::new("/sys/fs/cgroup/memory").join(rel));
            }
            if controllers.split(',').any(|c| c == "pids") {
                v1_pids = Some(Path::new("/sys/fs/cgroup/pids").join(rel));
            }
            if controllers.is_empty() {
                v2 = Some(Path::new("/sys/fs/cgroup").join(rel));
            }
        }
        let candidate = match (v1_memory, v1_pids, v2) {
            (Some(memory), Some(pids), _) => Cgroups::V1 { memory, pids },
            (_, _, Some(base)) if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
                Cgroups::V2 { base }
            }
            _ => Cgroups::None,
        };
        candidate.remove_stale();
        // Only if a cgroup can really be made and limited here.
        match candidate.create(&Limits::default()) {
            Ok(Some(cgroup)) => {
                cgroup.remove();
                candidate
            }
            _ => Cgroups::None,
        }
    }

    /// Removes the cgroups of steps whose server is gone (killed
    /// mid-build), with anything still in them.
    fn remove_stale(&self) {
        let parents = match self {
            Cgroups::V1 { memory, pids } => vec![memory.clone(), pids.clone()],
            Cgroups::V2 { base } => vec![base.clone()],
            Cgroups::None => Vec::new(),
        };
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name
                    .strip_prefix("wpaas-build-")
                    .and_then(|rest| rest.split('-').next())
                else {
                    continue;
                };
                if !Path::new("/proc").join(pid).exists() {
                    Cgroup {
                        dirs: vec![entry.path()],
                        v2: false,
                    }
                    .remove();
                }
            }
        }
    }

    fn create(&self, limits: &Limits) -> io::Result<Option<Cgroup>> {
        let name = format!(
            "wpaas-build-{}-{}",
            std::process::id(),
            NEXT_CGROUP.fetch_add(1, Ordering::Relaxed)
        );
        match self {
            Cgroups::None => Ok(None),
            Cgroups::V1 { memory, pids } => {
                let mut cgroup = Cgroup {
                    dirs: Vec::new(),
                    v2: false,
                };
                let made = (|| -> io::Result<()> {
                    let mem = memory.join(&name);
                    fs::create_dir(&mem)?;
                    cgroup.dirs.push(mem.clone());
                    fs::write(mem.join("memory.limit_in_bytes"), limits.memory.to_string())?;
                    // Swap too, where the kernel accounts it.
                    let _ = fs::write(
                        mem.join("memory.memsw.limit_in_bytes"),
                        limits.memory.to_string(),
                    );
                    let pid = pids.join(&name);
                    fs::create_dir(&pid)?;
                    cgroup.dirs.push(pid.clone());
                    fs::write(pid.join("pids.max"), limits.pids.to_string())
                })();
                match made {
                    Ok(()) => Ok(Some(cgroup)),
                    Err(e) => {
                        cgroup.remove();
                        Err(e)
                    }
                }
            }
            Cgroups::V2 { base } => {
                let _ = fs::write(base.join("cgroup.subtree_control"), "+memory +pids");
                let dir = base.join(&name);
                fs::create_dir(&dir)?;
                let cgroup = Cgroup {
                    dirs: vec![dir.clone()],
                    v2: true,
                };
                let limited = fs::write(dir.join("memory.max"), limits.memory.to_string())
                    .and_then(|_| fs::write(dir.join("pids.max"), limits.pids.to_string()));
                if let Err(e) = limited {
                    cgroup.remove();
                    return Err(e);
                }
                let _ = fs::write(dir.join("memory.swap.max"), "0");
                Ok(Some(cgroup))
            }
        }
    }
}

/// The cgroups of one step; removed (after killing anything left in them)
/// when the step ends.
struct Cgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
}

impl Cgroup {
    fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Which limit the step ran into, if any.
    fn exceeded(&self) -> Option<&'static str> {
        let read = |d: &PathBuf, f: &str| fs::read_to_string(d.join(f)).unwrap_or_default();
        let counter = |text: &str, key: &str| {
            text.lines()
                .filter_map(|l| l.strip_prefix(key))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .next()
                .unwrap_or(0)
        };
        for dir in &self.dirs {
            if self.v2 {
                if counter(&read(dir, "memory.events"), "oom_kill ") > 0 {
                    return Some("memory limit");
                }
                if counter(&read(dir, "pids.events"), "max ") > 0 {
                    return Some("process limit");
                }
            } else {
                if counter(&read(dir, "memory.oom_control"), "oom_kill ") > 0 {
                    return Some("memory limit");
                }
                if counter(&read(dir, "pids.events"), "max ") > 0 {
                    return Some("process limit");
                }
            }
        }
        None
    }

    #[allow(unsafe_code)]
    fn remove(self) {
        for dir in &self.dirs {
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<i32> = procs
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                if pids.is_empty() || Instant::now() > until {
                    break;
                }
                for pid in pids {
                    // SAFETY: sending a signal.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests;
