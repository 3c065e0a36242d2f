//! After a crash: builds left `Running` and releases left `Pending` whose
//! lease is gone are marked failed.

use serde::{de::DeserializeOwned, Serialize};
use sled::Transactional;

use super::keys::{decode, encode, lease_key, TxResult, BUILD_LEASE, RELEASE_LEASE};
use super::SledStore;
use crate::control::store::{now_rfc3339, transitions, Build, Change, Release, StoreError};

impl SledStore {
    /// See [`crate::control::store::Store::recover_interrupted`].
    pub(super) fn recover(&self) -> Result<usize, StoreError> {
        let mut changes = Vec::new();
        let releases = self.fail_orphans(&self.releases, RELEASE_LEASE, |r: &mut Release| {
            transitions::interrupt_release(r)
        })?;
        changes.extend(releases);
        let now = now_rfc3339();
        let builds = self.fail_orphans(&self.builds, BUILD_LEASE, |b: &mut Build| {
            transitions::interrupt_build(b, &now)
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
