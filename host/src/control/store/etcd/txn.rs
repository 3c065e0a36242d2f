//! Optimistic transactions: read what you need through a [`Tx`], say what
//! to write, commit. The commit is one etcd `Txn` whose guard is "every key
//! read still has the mod-revision it was read at (0: still absent)"; when
//! it fails, the whole closure runs again on fresh reads.

use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp};
use serde::{de::DeserializeOwned, Serialize};

use super::{keys, EtcdStore};
use crate::control::store::{App, StoreError};

/// Reads and writes of one attempt.
pub(super) struct Tx<'a> {
    store: &'a EtcdStore,
    compares: Vec<Compare>,
    ops: Vec<TxnOp>,
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl Tx<'_> {
    /// The raw value of `suffix`, guarded.
    pub fn get_raw(&mut self, suffix: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = keys::full(&self.store.etcd, suffix);
        let kv = self.store.etcd.get(key.clone())?;
        let revision = kv.as_ref().map_or(0, |kv| kv.mod_revision());
        self.compares
            .push(Compare::mod_revision(key, CompareOp::Equal, revision));
        Ok(kv.map(|kv| kv.into_key_value().1))
    }

    /// The record at `suffix`, guarded.
    pub fn get<T: DeserializeOwned>(
        &mut self,
        what: &str,
        suffix: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_raw(suffix)?
            .map(|bytes| decode(what, &bytes))
            .transpose()
    }

    /// The app record, or `NoSuchApp`, guarded.
    pub fn app(&mut self, name: &str) -> Result<App, StoreError> {
        self.get("app", &keys::app(name))?
            .ok_or_else(|| StoreError::NoSuchApp(name.to_string()))
    }

    /// The app's counters (zero if absent), guarded.
    pub fn counters(&mut self, app: &str) -> Result<keys::Counters, StoreError> {
        Ok(self
            .get("counters", &keys::counters(app))?
            .unwrap_or_default())
    }

    /// Also require `suffix` to be absent at commit (a key not read).
    pub fn require_absent(&mut self, suffix: &str) {
        let key = keys::full(&self.store.etcd, suffix);
        self.compares
            .push(Compare::version(key, CompareOp::Equal, 0));
    }

    /// Writes the record at `suffix`.
    pub fn put<T: Serialize>(&mut self, suffix: &str, value: &T) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.put_raw(suffix, bytes, None);
        Ok(())
    }

    /// Writes `bytes` at `suffix`, on `lease` if given.
    pub fn put_raw(&mut self, suffix: &str, bytes: Vec<u8>, lease: Option<i64>) {
        let key = keys::full(&self.store.etcd, suffix);
        let options = lease.map(|id| PutOptions::new().with_lease(id));
        self.ops.push(TxnOp::put(key, bytes, options));
    }

    /// Writes the (empty) lease key of `record` on this handle's lease.
    pub fn hold(&mut self, record: &str) {
        let lease = self.store.etcd.lease();
        self.put_raw(&keys::lease_of(record), Vec::new(), Some(lease));
    }

    /// Deletes `suffix`.
    pub fn delete(&mut self, suffix: &str) {
        let key = keys::full(&self.store.etcd, suffix);
        self.ops.push(TxnOp::delete(key, None));
    }

    /// Deletes every key starting with `suffix`.
    pub fn delete_prefix(&mut self, suffix: &str) {
        let key = keys::full(&self.store.etcd, suffix);
        self.ops
            .push(TxnOp::delete(key, Some(DeleteOptions::new().with_prefix())));
    }
}

impl EtcdStore {
    /// Runs `attempt` and commits what it wrote if nothing it read changed
    /// meanwhile, else runs it again. An error from `attempt` ends it with
    /// nothing written. Returns its result once committed, after the watch
    /// has announced the commit.
    pub(super) fn transact<R>(
        &self,
        mut attempt: impl FnMut(&mut Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        loop {
            let mut tx = Tx {
                store: self,
                compares: Vec::new(),
                ops: Vec::new(),
            };
            let result = attempt(&mut tx)?;
            if tx.ops.is_empty() {
                return Ok(result);
            }
            let resp = self
                .etcd
                .txn(Txn::new().when(tx.compares).and_then(tx.ops))?;
            if resp.succeeded() {
                let revision = resp.header().map_or(0, |h| h.revision());
                self.watch.wait_for(revision);
                return Ok(result);
            }
        }
    }
}
