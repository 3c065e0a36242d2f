//! Per-step cgroups (v1 or v2) that cap a step's memory and processes,
//! found once at start-up; without one a step gets a data-size rlimit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Limits;

/// Where per-step cgroups can be made.
#[derive(Debug, Clone)]
pub(super) enum Cgroups {
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
    pub(super) fn detect() -> Self {
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

    pub(super) fn create(&self, limits: &Limits) -> io::Result<Option<Cgroup>> {
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
pub(super) struct Cgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
}

impl Cgroup {
    pub(super) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Which limit the step ran into, if any.
    pub(super) fn exceeded(&self) -> Option<&'static str> {
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
    pub(super) fn remove(self) {
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
