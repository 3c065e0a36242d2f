//! The slugs the platform keeps. A slug is pinned from the moment it is
//! stored (or looked up for a rollback) until its release is recorded, so
//! that garbage collection — which keeps the slugs of each app's newest
//! [`KEEP_RELEASE_SLUGS`] releases — never removes one about to be used.
//! Processes run from a slug unpacked once per digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};

use super::Platform;

/// Keeps a slug from garbage collection while it is held.
pub struct SlugPin {
    digest: String,
    pins: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Drop for SlugPin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock().expect("slug pins");
        if let Some(n) = pins.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.digest);
            }
        }
    }
}

/// Slugs kept per app: those of its newest releases (and its current one).
/// A rollback to an older release fails with a message saying so.
pub const KEEP_RELEASE_SLUGS: usize = 10;

impl Platform {
    /// Stores the packed slug in `file` (moved into the store) and pins it
    /// until the returned pin is dropped. Blocking: call it off the async
    /// workers.
    pub fn adopt_slug(&self, file: &Path) -> Result<(String, SlugPin)> {
        let _gc = self.slug_gc.lock().expect("slug gc");
        let digest = self.store.adopt_slug_file(file)?;
        let pin = self.pin(&digest);
        Ok((digest, pin))
    }

    /// Pins a stored slug; `None` if it is not stored (any more).
    pub fn pin_stored_slug(&self, digest: &str) -> Option<SlugPin> {
        let _gc = self.slug_gc.lock().expect("slug gc");
        self.store.slug_path(digest)?;
        Some(self.pin(digest))
    }

    fn pin(&self, digest: &str) -> SlugPin {
        *self
            .slug_pins
            .lock()
            .expect("slug pins")
            .entry(digest.to_string())
            .or_default() += 1;
        SlugPin {
            digest: digest.to_string(),
            pins: self.slug_pins.clone(),
        }
    }

    /// Deletes the slugs no app keeps (see [`KEEP_RELEASE_SLUGS`]), on a
    /// blocking thread; returns their digests.
    pub async fn collect_slugs(&self) -> Result<Vec<String>> {
        let (store, pins, gc) = (
            self.store.clone(),
            self.slug_pins.clone(),
            self.slug_gc.clone(),
        );
        let removed = tokio::task::spawn_blocking(move || {
            let _gc = gc.lock().expect("slug gc");
            let pinned = pins.lock().expect("slug pins").keys().cloned().collect();
            store.remove_unused_slugs(KEEP_RELEASE_SLUGS, &pinned)
        })
        .await
        .map_err(|e| anyhow!("slug collection panicked: {e}"))??;
        if !removed.is_empty() {
            tracing::info!("removed {} unused slugs", removed.len());
        }
        Ok(removed)
    }

    /// The slug's files, unpacked once per digest (off the async workers).
    pub(super) fn unpacked_slug(&self, digest: &str) -> Result<PathBuf> {
        crate::control::store::off_worker(|| self.unpack_slug(digest))
    }

    fn unpack_slug(&self, digest: &str) -> Result<PathBuf> {
        let dir = self.store.home().unpacked_slug(digest);
        if dir.is_dir() {
            return Ok(dir);
        }
        let tarball = self.store.slug_path(digest).ok_or_else(|| {
            anyhow!("slug {digest} is no longer stored (wpaas keeps the slugs of each app's last {KEEP_RELEASE_SLUGS} releases); deploy the code again")
        })?;
        let file = std::fs::File::open(&tarball)?;
        // The server packed it: no entry cap beyond the slug's own size cap.
        let limits = wpaas_builder::archive::UnpackLimits {
            bytes: u64::MAX,
            entries: u64::MAX,
        };
        wpaas_builder::archive::unpack_limited(file, &dir, limits)
            .with_context(|| format!("could not unpack slug {digest}"))?;
        Ok(dir)
    }
}
