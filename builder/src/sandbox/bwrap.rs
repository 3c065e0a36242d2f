//! The command line of a sandboxed step: a shell that enters the step's
//! cgroups (or sets the rlimit fallback) and, for networked steps, a new
//! network namespace, then becomes bwrap with the step's mounts and
//! environment; and the generated files of the sandbox's `/etc`.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use super::cgroup::Cgroup;
use super::{Sandbox, Step, Tools, STACK};

/// The uid and gid a step runs as inside its sandbox.
pub(super) const BUILD_UID: u32 = 65534;

/// The `PATH` inside the sandbox.
pub(super) const SANDBOX_PATH: &str = "/opt/rust/bin:/usr/local/bin:/usr/bin:/bin";
/// `HOME` inside the sandbox.
pub(super) const SANDBOX_HOME: &str = "/home/build";

impl Sandbox {
    /// The `sh -c '…; exec bwrap …'` command for `step`.
    pub(super) fn command(
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

/// Single-quotes `path` for sh.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
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
