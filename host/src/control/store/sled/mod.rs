//! The store on one node: sled trees under `WPAAS_HOME/db`.
//!
//! ```text
//! apps      name → App
//! releases  app\0 + version → Release
//! builds    app\0 + sequence → Build
//! domains   domain → app name
//! counters  name → highest release version and build sequence;
//!           `\0build-ids` → the highest build id handed out
//! leases    kind + record key → lease id of the handle that holds it
//! ```
//!
//! Writes that belong together — a new release and its app's version
//! counter, a successful release and the app's `current` pointer, an app
//! and its domain index entries, a build and its lease — are one sled
//! transaction across trees, and every write is flushed before the method
//! returns, so a `kill -9` never leaves one half without the other.
//!
//! Leases: one process has the database open (sled locks it), so every
//! lease in the `leases` tree when it is opened belongs to a process that is
//! gone; [`SledStore::open`] clears them, and
//! [`Store::recover_interrupted`] then fails the records that lost theirs.
//!
//! Transactions in sled 0.34 hold a process-wide lock while their closure
//! runs: the closures passed to `update_app` and `next_release` must be
//! quick and must not call back into the store.

mod apps;
mod builds;
mod keys;
mod recovery;
mod releases;

use std::fs;

use tokio::sync::broadcast;

use super::files::{HasSlugFiles, SlugFiles};
use super::{Change, Store, StoreError};
use crate::home::Home;

/// Changes a watcher may fall behind before it is told it lagged.
const WATCH_BUFFER: usize = 1024;

/// The sled store. Share it as `Arc<dyn Store>`.
pub struct SledStore {
    home: Home,
    db: sled::Db,
    apps: sled::Tree,
    releases: sled::Tree,
    builds: sled::Tree,
    domains: sled::Tree,
    counters: sled::Tree,
    leases: sled::Tree,
    /// This handle's lease: held by the builds it runs and the releases it
    /// activates, gone when the process is.
    lease: u64,
    slugs: SlugFiles,
    changes: broadcast::Sender<Change>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("home", &self.home)
            .finish()
    }
}

impl SledStore {
    /// Opens (creating if needed) the store under `home`. Leases of the
    /// process that had it open before are dropped (see the module docs).
    pub fn open(home: &Home) -> Result<SledStore, StoreError> {
        fs::create_dir_all(home.build_logs())?;
        fs::create_dir_all(home.build_caches())?;
        let slugs = SlugFiles::open(home)?;
        let db = sled::Config::new().path(home.db()).open()?;
        let leases = db.open_tree("leases")?;
        leases.clear()?;
        let lease = db.generate_id()?;
        let store = SledStore {
            home: home.clone(),
            apps: db.open_tree("apps")?,
            releases: db.open_tree("releases")?,
            builds: db.open_tree("builds")?,
            domains: db.open_tree("domains")?,
            counters: db.open_tree("counters")?,
            leases,
            lease,
            slugs,
            changes: broadcast::channel(WATCH_BUFFER).0,
            db,
        };
        store.seed_build_ids()?;
        store.sync()?;
        Ok(store)
    }

    /// Makes the writes so far durable (an fsync: off the async workers).
    fn sync(&self) -> Result<(), StoreError> {
        super::off_worker(|| self.db.flush())?;
        Ok(())
    }

    /// Makes a committed write durable, then announces it.
    fn committed(&self, changes: impl IntoIterator<Item = Change>) -> Result<(), StoreError> {
        self.sync()?;
        for change in changes {
            // No watcher is fine.
            let _ = self.changes.send(change);
        }
        Ok(())
    }

    /// Every tree that holds something of an app, for a transaction over
    /// all of it (destroy, rename): apps, releases, builds, domains,
    /// counters, leases.
    #[allow(clippy::type_complexity)]
    fn app_trees(
        &self,
    ) -> (
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
    ) {
        (
            &self.apps,
            &self.releases,
            &self.builds,
            &self.domains,
            &self.counters,
            &self.leases,
        )
    }

    /// This handle's lease id, as stored in the `leases` tree.
    fn lease_value(&self) -> [u8; 8] {
        self.lease.to_be_bytes()
    }
}

/// Slugs: files by content under `WPAAS_HOME/slugs`; in sled, only
/// releases and builds name them.
impl HasSlugFiles for SledStore {
    fn slug_files(&self) -> &SlugFiles {
        &self.slugs
    }
}

impl Store for SledStore {
    fn home(&self) -> &Home {
        &self.home
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.sync()
    }

    fn watch(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn recover_interrupted(&self) -> Result<usize, StoreError> {
        self.recover()
    }
}

#[cfg(test)]
mod tests {
    //! The conformance suite, run against sled.
    use std::sync::Arc;

    use super::*;

    fn open(home: &Home) -> Arc<dyn Store> {
        Arc::new(SledStore::open(home).expect("open the sled store"))
    }

    crate::control::store::conformance::conformance_tests!(open);
}
