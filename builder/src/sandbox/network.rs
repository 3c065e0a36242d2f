//! Network for the steps allowed it: a network namespace of their own
//! behind slirp4netns, with the host's loopback unreachable.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A step's own network namespace, plugged into slirp4netns: the step's
/// shell makes it (`unshare --net`), says so on fd 3 and waits for a byte
/// on fd 4 before it becomes bwrap.
#[derive(Default)]
pub(super) struct NetSetup {
    info_read: Option<fs::File>,
    block_write: Option<fs::File>,
    child_ends: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    slirp: Option<Child>,
    exit_write: Option<fs::File>,
}

impl NetSetup {
    #[allow(unsafe_code)]
    pub(super) fn prepare(&mut self, cmd: &mut Command) -> io::Result<()> {
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
    pub(super) fn start(&mut self, child: &Child, slirp: &Path) -> io::Result<()> {
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

    pub(super) fn stop(&mut self) {
        self.exit_write = None;
        if let Some(mut slirp) = self.slirp.take() {
            let _ = slirp.kill();
            let _ = slirp.wait();
        }
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
