//! Server-side builds: how many run at once, and the sandbox they run in.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wpaas_builder::sandbox::{Limits, Sandbox, SandboxError};

use super::log_sink::LogSink;

/// How the server runs builds (`wpaas server --max-builds`,
/// `--build-memory`, `--unsandboxed-builds`).
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Builds running at once; the rest wait in line.
    pub max_builds: usize,
    /// Limits of each build step.
    pub limits: Limits,
    /// Run build steps without the sandbox (development only: unsafe).
    pub unsandboxed: bool,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            max_builds: default_max_builds(),
            limits: Limits::default(),
            unsandboxed: false,
        }
    }
}

/// The default `--max-builds`: the number of CPUs, at least 1.
pub fn default_max_builds() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The server's build slots and sandbox.
pub struct Builds {
    slots: Arc<Semaphore>,
    max: usize,
    sandbox: Result<Sandbox, SandboxError>,
}

impl Builds {
    /// Checks the sandbox once, at start. When bubblewrap is unusable the
    /// server still starts, and every build fails with the reason.
    pub fn new(config: &BuildConfig) -> Self {
        let sandbox = if config.unsandboxed {
            Ok(Sandbox::unsandboxed(config.limits))
        } else {
            Sandbox::new(config.limits)
        };
        match &sandbox {
            Ok(s) if s.is_sandboxed() => tracing::info!("{}", s.describe()),
            Ok(s) => tracing::warn!("{}", s.describe()),
            Err(e) => tracing::error!("builds will fail: {e}"),
        }
        let max = config.max_builds.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            sandbox,
        }
    }

    /// The sandbox builds run in, or why there is none.
    pub fn sandbox(&self) -> Result<Sandbox, SandboxError> {
        self.sandbox.clone()
    }

    /// Waits for a build slot, telling the client when it has to.
    pub async fn slot(&self, log: &LogSink) -> OwnedSemaphorePermit {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let plural = if self.max == 1 { "" } else { "s" };
                log.send(format!(
                    "-----> Waiting for a build slot ({} build{plural} running)",
                    self.max
                ));
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the build semaphore is never closed")
            }
        }
    }
}

impl Default for Builds {
    fn default() -> Self {
        Self::new(&BuildConfig::default())
    }
}
