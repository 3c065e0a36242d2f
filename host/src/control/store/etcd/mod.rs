//! The store of a cluster: records in etcd, under the connection's prefix
//! (`/wpaas/` for a server) + `store/`.
//!
//! ```text
//! store/apps/<app>                      → App (JSON)
//! store/counters/<app>                  → highest release version, build sequence
//! store/releases/<app>/<version:010>    → Release
//! store/builds/<app>/<sequence:020>     → Build
//! store/build-ids                       → highest build number (ids are b<n>)
//! store/domains/<domain>                → app name
//! store/leases/release/<app>/<version>  → (empty) on the lease of the handle
//! store/leases/build/<app>/<sequence>   →   that holds the pending release /
//!                                           running build
//! ```
//!
//! Numbers are zero-padded so that a prefix range lists an app's releases
//! and builds in order.
//!
//! Every write is one etcd `Txn` that compares the mod-revision of every key
//! it read (0 for one it found absent) and retries from the reads when one
//! changed meanwhile ([`txn::Tx`]): the same serializable transactions as
//! sled's, across nodes. Counters are keys like any other, so two nodes
//! allocating a release version or a build id race on one compare and one
//! of them reads again.
//!
//! Leases: a pending release or running build has a lease key attached to
//! the etcd lease of the handle that made it; when that handle stops (its
//! lease is revoked) or its node dies (the lease expires after its TTL),
//! etcd deletes the key, and [`Store::recover_interrupted`] — on any node —
//! fails the record.
//!
//! Changes: one etcd watch on the prefix turns every record written, by this
//! node or another, into a [`Change`]. A write waits until the watch has
//! passed its revision before it returns, so its own changes are announced
//! by then (as in sled).
//!
//! Slugs stay files under the home of each node ([`SlugFiles`]); a cluster
//! does not move them between nodes yet.

mod apps;
mod builds;
mod keys;
mod recovery;
mod releases;
mod txn;
mod watch;

use std::fs;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::files::{HasSlugFiles, SlugFiles};
use super::{Change, Store, StoreError};
use crate::etcd::{Etcd, EtcdError};
use crate::home::Home;

/// Changes a watcher may fall behind before it is told it lagged.
const WATCH_BUFFER: usize = 1024;

/// The etcd store. Share it as `Arc<dyn Store>`.
pub struct EtcdStore {
    home: Home,
    etcd: Etcd,
    slugs: SlugFiles,
    changes: broadcast::Sender<Change>,
    watch: Arc<watch::Progress>,
    watch_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("home", &self.home)
            .field("etcd", &self.etcd)
            .finish()
    }
}

impl EtcdStore {
    /// The store on `etcd` (records) and `home` (slugs, build logs, caches,
    /// git repositories), announcing changes from now on.
    pub fn open(home: &Home, etcd: Etcd) -> Result<EtcdStore, StoreError> {
        fs::create_dir_all(home.build_logs())?;
        fs::create_dir_all(home.build_caches())?;
        let slugs = SlugFiles::open(home)?;
        let changes = broadcast::channel(WATCH_BUFFER).0;
        let (watch, watch_task) = watch::start(&etcd, keys::root(&etcd), changes.clone())?;
        Ok(EtcdStore {
            home: home.clone(),
            etcd,
            slugs,
            changes,
            watch,
            watch_task,
        })
    }

    /// The connection (for tests and the cluster code beside the store).
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.watch_task.abort();
    }
}

impl From<EtcdError> for StoreError {
    fn from(e: EtcdError) -> Self {
        match e {
            EtcdError::Unreachable { .. } => StoreError::Unavailable(e.to_string()),
            e => StoreError::Db(e.to_string()),
        }
    }
}

impl HasSlugFiles for EtcdStore {
    fn slug_files(&self) -> &SlugFiles {
        &self.slugs
    }
}

impl Store for EtcdStore {
    fn home(&self) -> &Home {
        &self.home
    }

    fn flush(&self) -> Result<(), StoreError> {
        // etcd acknowledged every write after its raft log was synced.
        Ok(())
    }

    fn watch(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn recover_interrupted(&self) -> Result<usize, StoreError> {
        self.recover()
    }
}

#[cfg(test)]
mod tests;
