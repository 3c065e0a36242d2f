//! The durable state of `wpaas server`: apps, releases, builds, custom
//! domains and slugs.
//!
//! * [`contract`](Store) — the [`Store`] trait (and its parts [`AppStore`],
//!   [`ReleaseStore`], [`BuildStore`], [`SlugStore`]): what any backend
//!   promises, including how it behaves when writers race.
//! * [`SledStore`] — the backend on one node: sled trees under
//!   `WPAAS_HOME/db`, split by record kind.
//! * [`EtcdStore`] — the backend of a cluster (`wpaas server --cluster`):
//!   records in etcd, shared by every node.
//! * records, validation rules and errors, shared by every backend.
//! * [`SlugFiles`] — slug files by content, shared by every backend.
//!
//! Code above the store holds an `Arc<dyn Store>`. Helpers that take generic
//! closures or derive from other reads are methods of `dyn Store` itself
//! (below), so the trait stays object-safe and a backend implements only
//! what touches its records.

mod contract;
mod error;
pub mod etcd;
mod files;
mod records;
pub mod sled;
mod transitions;
mod validate;

#[cfg(test)]
pub(crate) mod conformance;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use self::etcd::EtcdStore;
pub use self::sled::SledStore;
pub use contract::{AppStore, BuildStore, Change, ReleaseStore, SlugStore, Store};
pub use error::StoreError;
pub use files::{remove_app_files, rename_app_files, SlugFiles};
pub use records::{
    now_rfc3339, App, Autoscale, Build, BuildOutput, BuildSource, BuildStatus, Healthcheck,
    ProcessLimits, Release, ReleaseDraft, ReleaseStatus,
};
pub use validate::{
    claimable_domain, is_build_id, is_digest, normalize_domain, reserved_domain, validate_app_name,
    validate_config_key,
};

impl dyn Store + '_ {
    /// [`AppStore::update_app_with`] with any closure (which may run more
    /// than once).
    pub fn update_app(
        &self,
        name: &str,
        mut change: impl FnMut(&mut App),
    ) -> Result<App, StoreError> {
        self.update_app_with(name, &mut change)
    }

    /// [`ReleaseStore::next_release_with`] with any closure (which may run
    /// more than once).
    pub fn next_release(
        &self,
        app: &str,
        mut draft: impl FnMut(Option<&Release>) -> ReleaseDraft,
    ) -> Result<Release, StoreError> {
        self.next_release_with(app, &mut draft)
    }

    /// The current release's config, or empty.
    pub fn config(&self, app: &str) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self
            .current_release(app)?
            .map(|r| r.config)
            .unwrap_or_default())
    }

    /// Records a new running build with no source details.
    pub fn create_build(&self, app: &str) -> Result<Build, StoreError> {
        self.start_build(app, BuildSource::default())
    }

    /// The newest succeeded build of exactly `source` (same commit, same
    /// buildpack) whose slug is still stored: `git push` releases it again
    /// instead of rebuilding. `None` for a source without a commit.
    pub fn build_of(&self, app: &str, source: &BuildSource) -> Result<Option<Build>, StoreError> {
        if source.commit.is_none() {
            return Ok(None);
        }
        Ok(self.builds(app)?.into_iter().find(|b| {
            b.status == BuildStatus::Succeeded
                && b.commit == source.commit
                && b.buildpack == source.buildpack
                && b.release.is_some()
                && b.slug
                    .as_deref()
                    .is_some_and(|s| self.slug_path(s).is_some())
        }))
    }

    /// `home/builds/<id>.log`; `NoSuchBuild` for a malformed id (so user
    /// input can never name another path).
    pub fn build_log_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        if !is_build_id(id) {
            return Err(StoreError::NoSuchBuild(id.to_string()));
        }
        Ok(self.home().build_log(id))
    }

    /// `home/cache/build/<app>` (not created); `InvalidAppName` for a bad name.
    pub fn build_cache_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        validate_app_name(app)?;
        Ok(self.home().build_cache(app))
    }

    /// `home/git/<app>.git`, the app's bare repository (not created).
    pub fn git_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        validate_app_name(app)?;
        Ok(self.home().git_dir(app))
    }

    /// The slugs that stay: for every app, those of its newest `keep`
    /// releases (whatever their status) and of its current release.
    pub fn slugs_in_use(&self, keep: usize) -> Result<BTreeSet<String>, StoreError> {
        let mut in_use = BTreeSet::new();
        for app in self.apps()? {
            // Newest first. An app destroyed meanwhile keeps nothing.
            let releases = match self.releases(&app.name) {
                Ok(releases) => releases,
                Err(StoreError::NoSuchApp(_)) => continue,
                Err(e) => return Err(e),
            };
            let current = releases.iter().find(|r| Some(r.version) == app.current);
            let kept = releases.iter().take(keep).chain(current);
            in_use.extend(kept.filter_map(|r| r.slug.clone()));
        }
        Ok(in_use)
    }

    /// Deletes every stored slug (tarball and unpacked files) that is
    /// neither in [`slugs_in_use`](Self::slugs_in_use)`(keep)` nor in
    /// `pinned` (slugs about to be released). Returns the digests removed.
    pub fn remove_unused_slugs(
        &self,
        keep: usize,
        pinned: &BTreeSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut kept = self.slugs_in_use(keep)?;
        kept.extend(pinned.iter().cloned());
        self.remove_slugs_except(&kept)
    }
}

/// Runs blocking `f` (an fsync, a tree removal) without holding up an
/// async worker: on a multi-thread runtime's worker it is run in place
/// while the worker's other tasks move to another thread; anywhere else
/// (a blocking thread, a plain thread, a current-thread runtime) it just
/// runs.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
