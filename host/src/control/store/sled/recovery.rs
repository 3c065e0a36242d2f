//! After a crash: builds left `Running` and releases left `Pending` whose
//! lease is gone are marked failed.

use serde::{de::DeserializeOwned, Serialize};
use sled::Transactional;

use super::keys::{decode, encode, lease_key, TxResult, BUILD_LEASE, RELEASE_LEASE};
use super::SledStore;
use crate::control::store::{
    now_rfc3339, Build, BuildStatus, Change, Release, ReleaseStatus, StoreError,
};

/// The reason an interrupted record is failed with.
const REASON: &str = "interrupted: the server stopped before it finished";

impl SledStore {
    /// See [`crate::control::store::Store::recover_interrupted`].
    pub(super) fn recover(&self) -> Result<usize, StoreError> {
        let mut changes = Vec::new();
        let releases = self.fail_orphans(&self.releases, RELEASE_LEASE, |r: &mut Release| {
            if r.status != ReleaseStatus::Pending {
                return None;
            }
            r.status = ReleaseStatus::Failed {
                reason: REASON.to_string(),
            };
            Some(Change::Release {
                app: r.app.clone(),
                version: r.version,
            })
        })?;
        changes.extend(releases);
        let builds = self.fail_orphans(&self.builds, BUILD_LEASE, |b: &mut Build| {
            if b.status != BuildStatus::Running {
                return None;
            }
            b.status = BuildStatus::Failed {
                reason: REASON.to_string(),
            };
            b.finished_at = Some(now_rfc3339());
            Some(Change::Build {
                app: b.app.clone(),
                id: b.id.clone(),
            })
        })?;
        changes.extend(builds);
        let n = changes.len();
        self.committed(changes)?;
        Ok(n)
    }

    /// Applies `fail` to every record of `tree` that has no lease; `fail`
    /// says whether the record was unfinished (and what changed). Each
    /// record is rewritten in a transaction that checks it is unchanged
    /// and still has no lease, so a finish that races this one wins.
    fn fail_orphans<T: Serialize + DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        lease_kind: u8,
        fail: impl Fn(&mut T) -> Option<Change>,
    ) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        for kv in tree.iter() {
            let (key, old) = kv?;
            let mut record: T = decode("record", &old)?;
            let Some(change) = fail(&mut record) else {
                continue;
            };
            let new = encode(&record)?;
            let lease = lease_key(lease_kind, &key);
            let done = (tree, &self.leases).transaction(|(records, leases)| -> TxResult<bool> {
                if leases.get(&lease)?.is_some() || records.get(&key)?.as_ref() != Some(&old) {
                    return Ok(false);
                }
                records.insert(&key, new.as_slice())?;
                Ok(true)
            })?;
            if done {
                changes.push(change);
            }
        }
        Ok(changes)
    }
}
