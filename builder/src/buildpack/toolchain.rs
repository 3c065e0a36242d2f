//! Toolchains a buildpack installs once and every app's build shares
//! (componentize-py, componentize-js): each one lives in
//! `TOOLCHAINS_DIR/NAME` (NAME carries the pinned version, so a new
//! version installs beside the old), installed into a temporary directory
//! and renamed into place only when complete, under a lock so two builds
//! racing to install it install it once. A half-finished install (the
//! server killed in the middle) is a leftover temporary directory, removed
//! by the next install; it is never mistaken for a toolchain.

use std::fs;
use std::path::{Path, PathBuf};

use super::{io_err, BuildError};

/// The marker written last into a complete toolchain.
const COMPLETE: &str = ".wpaas-complete";

/// `TOOLCHAINS_DIR/NAME`, installing it first with `install` (given an
/// empty directory to fill) when it is not there yet.
pub(crate) fn ensure(
    toolchains_dir: &Path,
    name: &str,
    install: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    let done = toolchains_dir.join(name);
    if done.join(COMPLETE).is_file() {
        return Ok(done);
    }
    fs::create_dir_all(toolchains_dir)
        .map_err(io_err(format!("creating {}", toolchains_dir.display())))?;
    let _lock = Lock::take(&toolchains_dir.join(format!(".{name}.lock")))?;
    // Another build may have installed it while this one waited.
    if done.join(COMPLETE).is_file() {
        return Ok(done);
    }
    let partial = toolchains_dir.join(format!(".{name}.partial"));
    for stale in [&partial, &done] {
        if stale.exists() {
            fs::remove_dir_all(stale).map_err(io_err(format!("removing {}", stale.display())))?;
        }
    }
    fs::create_dir(&partial).map_err(io_err(format!("creating {}", partial.display())))?;
    install(&partial)?;
    fs::write(partial.join(COMPLETE), b"").map_err(io_err("marking the toolchain complete"))?;
    fs::rename(&partial, &done).map_err(io_err(format!("moving {} into place", done.display())))?;
    Ok(done)
}

/// An exclusive `flock` on a file, released when dropped (or when the
/// process dies, so a killed install never leaves it held).
struct Lock(fs::File);

impl Lock {
    #[allow(unsafe_code)]
    fn take(path: &Path) -> Result<Self, BuildError> {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err(format!("locking {}", path.display()))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking the descriptor this lock owns.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn racing_builds_install_once_and_a_failed_install_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let installs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (root, installs) = (dir.path().to_owned(), installs.clone());
                std::thread::spawn(move || {
                    ensure(&root, "tool-1.0", |into| {
                        installs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        fs::write(into.join("bin"), b"x").map_err(io_err("writing"))
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().join("bin").is_file());
        }
        assert_eq!(installs.load(Ordering::SeqCst), 1);

        let err = ensure(dir.path(), "broken-2.0", |into| {
            fs::write(into.join("half"), b"x").unwrap();
            Err(BuildError::NoBuildpack)
        });
        assert!(err.is_err());
        assert!(!dir.path().join("broken-2.0").exists());
        // The next try starts from an empty directory.
        let done = ensure(dir.path(), "broken-2.0", |into| {
            assert_eq!(fs::read_dir(into).unwrap().count(), 0);
            Ok(())
        })
        .unwrap();
        assert!(done.join(COMPLETE).is_file());
    }
}
