//! The memory, process and output limits of one build step.

/// Default memory limit of a build step (all its processes together when
/// cgroups are available).
const DEFAULT_MEMORY: u64 = 4 << 30;
/// Default cap on the processes and threads of a build step (cgroups only).
const DEFAULT_PIDS: u64 = 1024;
/// Default cap on the bytes of output a build step may show.
const DEFAULT_OUTPUT: u64 = 8 << 20;

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
