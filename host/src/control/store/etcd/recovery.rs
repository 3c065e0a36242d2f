//! Builds left `Running` and releases left `Pending` whose lease key is
//! gone (their handle stopped, or their node's lease expired) are marked
//! failed.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::{de::DeserializeOwned, Serialize};

use super::keys;
use super::txn::{decode, encode};
use super::EtcdStore;
use crate::control::store::{now_rfc3339, transitions, Build, Change, Release, StoreError};

impl EtcdStore {
    /// See [`crate::control::store::Store::recover_interrupted`].
    pub(super) fn recover(&self) -> Result<usize, StoreError> {
        let releases = self.fail_orphans("releases/", |r: &mut Release| {
            transitions::interrupt_release(r)
        })?;
        let now = now_rfc3339();
        let builds = self.fail_orphans("builds/", |b: &mut Build| {
            transitions::interrupt_build(b, &now)
        })?;
        Ok(releases + builds)
    }

    /// Applies `fail` to every record under `kind` (`releases/`, `builds/`)
    /// whose lease key is absent; `fail` says whether the record was
    /// unfinished. Each record is rewritten by a Txn that checks it is
    /// unchanged and its lease key still absent, so a holder that finishes
    /// at the same moment wins or loses cleanly. Returns how many it failed.
    fn fail_orphans<T: Serialize + DeserializeOwned>(
        &self,
        kind: &str,
        fail: impl Fn(&mut T) -> Option<Change>,
    ) -> Result<usize, StoreError> {
        let root = keys::full(&self.etcd, "");
        let mut failed = 0;
        let mut last = 0;
        for kv in self.etcd.get_prefix(keys::full(&self.etcd, kind))? {
            let mut record: T = decode("record", kv.value())?;
            if fail(&mut record).is_none() {
                continue;
            }
            let suffix = String::from_utf8_lossy(&kv.key()[root.len()..]).into_owned();
            let lease = keys::full(&self.etcd, &keys::lease_of(&suffix));
            let txn = Txn::new()
                .when([
                    Compare::mod_revision(kv.key(), CompareOp::Equal, kv.mod_revision()),
                    Compare::version(lease, CompareOp::Equal, 0),
                ])
                .and_then([TxnOp::put(kv.key(), encode(&record)?, None)]);
            let resp = self.etcd.txn(txn)?;
            if resp.succeeded() {
                failed += 1;
                last = resp.header().map_or(0, |h| h.revision());
            }
        }
        self.watch.wait_for(last);
        Ok(failed)
    }
}
