//! What a store promises, whatever holds the records: sled on one node
//! today ([`super::SledStore`]), a distributed store (etcd) for a cluster
//! later. Nothing above this trait may depend on which.
//!
//! ## Races
//!
//! Every method is atomic on its own, and holds when several servers share
//! the store, not only several threads of one:
//!
//! * A write that depends on what it read is a compare-and-swap or a
//!   transaction over everything it read (sled: a multi-tree transaction;
//!   etcd: a `Txn` comparing mod-revisions). A lost race either retries
//!   (read-modify-write: [`AppStore::update_app_with`],
//!   [`ReleaseStore::next_release_with`]) or fails with the error the
//!   winner makes true (`AppExists`, `DomainTaken`, `ReleaseFinished`).
//!   Closures passed in may therefore run more than once, and must be quick
//!   and must not call back into the store.
//! * Numbers are allocated by compare-and-swap on a counter: release
//!   versions per app, build ids per store. Two writers never get the same
//!   one; a failed or abandoned allocation leaves a gap, never a reuse.
//! * What only lives while its holder does holds a *lease* of the store
//!   handle that made it: a running build, a pending release. A handle's
//!   lease ends with it (sled: with the process, whose file lock keeps any
//!   other out; etcd: a lease kept alive while the server runs, so records
//!   of a node that died expire by TTL). [`Store::recover_interrupted`]
//!   fails whatever no live lease holds.
//! * Every committed change is announced on [`Store::watch`], after it is
//!   durable, so a watcher that re-reads sees it.
//!
//! Reads see committed state; a read followed by a write is not atomic
//! unless it is one of the methods above. Callers that need several
//! methods to act as one (deploy: next release → activate → finish) hold
//! the app's lock in [`crate::control::platform::Platform`] (one node) —
//! a cluster needs that lock in the store, as a lease, when it comes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio::sync::broadcast;

use super::records::{App, Build, BuildOutput, BuildSource, Release, ReleaseDraft};
use super::StoreError;
use crate::home::Home;

/// The store: records, slug files, leases and change notifications.
/// Shared as `Arc<dyn Store>`; convenience methods with generic closures
/// and derived reads are on `dyn Store` itself (see the `store` module).
pub trait Store: AppStore + ReleaseStore + BuildStore + SlugStore + Send + Sync {
    /// The WPAAS_HOME whose files (slugs, build logs, caches, git
    /// repositories) go with the records.
    fn home(&self) -> &Home;

    /// Makes every write so far durable. Writes are durable when their
    /// method returns already; this is for shutdown.
    fn flush(&self) -> Result<(), StoreError>;

    /// Announces every committed change from now on. A receiver that falls
    /// behind gets `Lagged` and should re-read what it cares about.
    fn watch(&self) -> broadcast::Receiver<Change>;

    /// Marks builds left `Running` and releases left `Pending` that no live
    /// lease holds as failed ("interrupted"): those of a server that
    /// stopped (or was killed) before it finished them. Each record is
    /// changed by compare-and-swap, so a holder that finishes at the same
    /// moment wins or loses cleanly. Call at startup before serving (and,
    /// in a cluster, whenever a lease may have expired). Returns how many
    /// records it changed.
    fn recover_interrupted(&self) -> Result<usize, StoreError>;
}

/// Apps and their custom domains.
pub trait AppStore {
    /// Creates an app with defaults. Create-if-absent: of two creators of
    /// one name, one gets `AppExists`. `InvalidAppName` for a bad name.
    fn create_app(&self, name: &str) -> Result<App, StoreError>;

    /// One app, or `NoSuchApp`.
    fn app(&self, name: &str) -> Result<App, StoreError>;

    /// All apps, sorted by name.
    fn apps(&self) -> Result<Vec<App>, StoreError>;

    /// Read-modify-write of an app (formation, buildpack, healthcheck,
    /// autoscale, limits): `change` is applied to the stored record and the
    /// result written only if the record did not change meanwhile, else
    /// re-read and re-applied — so `change` may run more than once. `name`,
    /// `created_at`, `domains` and `current` are the store's and are
    /// restored if `change` touches them. Returns the app as written.
    fn update_app_with(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut App),
    ) -> Result<App, StoreError>;

    /// Removes the app with its releases, builds, domains and leases in one
    /// transaction, then (best effort) its build logs, build cache and git
    /// repository. Slugs stay: they are content-addressed and may be
    /// shared. `NoSuchApp` if it is gone (also: lost a race to destroy it).
    fn destroy_app(&self, name: &str) -> Result<(), StoreError>;

    /// Renames an app with everything the store keeps of it — releases,
    /// builds, counters, leases, domain index entries — in one
    /// transaction, then (best effort) its files: release outputs, build
    /// cache, git repository. `AppExists` if `new` is taken,
    /// `InvalidAppName` for a bad name, `NoSuchApp` if `old` is gone.
    /// Returns the app under its new name.
    fn rename_app(&self, old: &str, new: &str) -> Result<App, StoreError>;

    /// Claims a custom domain (normalized; reserved names refused) for the
    /// app: the domain index entry and the app's list change in one
    /// transaction, which checks the entry is absent or the app's own. Of
    /// two apps claiming one domain, one gets `DomainTaken`. Adding a domain
    /// the app has is a no-op. Returns the app.
    fn add_domain(&self, app: &str, domain: &str) -> Result<App, StoreError>;

    /// Gives a custom domain up (one transaction, as [`AppStore::add_domain`]);
    /// `NoSuchDomain` if the app does not have it. Returns the app.
    fn remove_domain(&self, app: &str, domain: &str) -> Result<App, StoreError>;

    /// The app that owns a custom domain (case-insensitive; one trailing
    /// dot ignored).
    fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError>;
}

/// Releases: versioned, immutable once finished.
pub trait ReleaseStore {
    /// Allocates release vN+1 (N = the highest version ever allocated for
    /// the app, whatever `current` is) and stores it `Pending`, held by this
    /// store's lease, in one transaction with the app's version counter.
    /// Concurrent callers get distinct versions. `draft` gets the app's
    /// current release (`None` before the first success) and may run more
    /// than once. Config keys are checked (`InvalidConfigKey`, nothing
    /// allocated).
    fn next_release_with(
        &self,
        app: &str,
        draft: &mut dyn FnMut(Option<&Release>) -> ReleaseDraft,
    ) -> Result<Release, StoreError>;

    /// Finishes a pending release by compare-and-swap from `Pending`:
    /// `Ok(())` → `Succeeded` and the app's `current` moves to it, in one
    /// transaction; `Err(reason)` → `Failed`, `current` untouched. The
    /// lease is released. A release that is not pending (finished before,
    /// or recovered as interrupted) gives `ReleaseFinished`.
    fn finish_release(
        &self,
        app: &str,
        version: u32,
        outcome: Result<(), String>,
    ) -> Result<Release, StoreError>;

    /// One release; `NoSuchApp` or `NoSuchRelease`.
    fn release(&self, app: &str, version: u32) -> Result<Release, StoreError>;

    /// All releases of the app, newest first.
    fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError>;

    /// The release that is serving (`app.current`), if any.
    fn current_release(&self, app: &str) -> Result<Option<Release>, StoreError>;
}

/// Builds: one record per build, with its outcome.
pub trait BuildStore {
    /// Records a new `Running` build of `source`, held by this store's
    /// lease. Its id `b<n>` is unique in the store, across apps and
    /// destroy/re-create, and is allocated by compare-and-swap.
    fn start_build(&self, app: &str, source: BuildSource) -> Result<Build, StoreError>;

    /// Finishes a build by compare-and-swap from `Running`: `Ok(output)` →
    /// `Succeeded` with its slug/release, `Err(reason)` → `Failed`; the
    /// lease is released. A build that is finished already (e.g. recovered
    /// as interrupted after its lease expired) keeps its first outcome,
    /// which is returned.
    fn finish_build(
        &self,
        app: &str,
        id: &str,
        outcome: Result<BuildOutput, String>,
    ) -> Result<Build, StoreError>;

    /// One build; `NoSuchApp` or `NoSuchBuild`.
    fn build(&self, app: &str, id: &str) -> Result<Build, StoreError>;

    /// The app's builds, newest first.
    fn builds(&self, app: &str) -> Result<Vec<Build>, StoreError>;
}

/// Slugs, stored by content (sha256) as files under the home. Writing the
/// same bytes twice is idempotent, so concurrent writers cannot conflict.
pub trait SlugStore {
    /// Stores a slug; returns its digest.
    fn put_slug(&self, bytes: &[u8]) -> Result<String, StoreError>;

    /// Stores the slug in file `src` (copied, streamed); returns its digest.
    fn put_slug_file(&self, src: &Path) -> Result<String, StoreError>;

    /// Stores the slug in file `src`, moving it (same file system: under the
    /// home); returns its digest.
    fn adopt_slug_file(&self, src: &Path) -> Result<String, StoreError>;

    /// The local file of a stored slug; `None` if the digest is malformed
    /// or not stored here.
    fn slug_path(&self, digest: &str) -> Option<PathBuf>;

    /// Deletes every stored slug not in `keep`; returns the digests removed.
    /// Files are local: the caller keeps slugs it is about to use out of
    /// the way by listing them (see `Platform`'s slug pins).
    fn remove_slugs_except(&self, keep: &BTreeSet<String>) -> Result<Vec<String>, StoreError>;
}

/// A committed change, as [`Store::watch`] announces it: which record
/// changed, not how (watchers re-read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An app was created or its record changed (settings, domains, the
    /// current release).
    App(String),
    /// An app was destroyed with everything of it.
    AppDestroyed(String),
    /// A release was allocated or finished.
    Release {
        /// The app.
        app: String,
        /// The release's version.
        version: u32,
    },
    /// A build was started or finished (or recovered as interrupted).
    Build {
        /// The app.
        app: String,
        /// The build's id.
        id: String,
    },
}
