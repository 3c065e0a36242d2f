//! App data: the durable key-value store components reach through
//! `wasi:keyvalue` and the API reaches through `wpaas kv:*`.
//!
//! * [`KvEngine`] — what any backend promises: per-app buckets, atomic
//!   operations, quotas, durability of acknowledged writes. No backend type
//!   appears in it, so a distributed backend can take the place of the one
//!   below without touching the host functions or the API.
//! * [`SledKv`] — the backend on one node: one sled tree under
//!   `WPAAS_HOME/data/kv`.
//! * [`EtcdKv`] — the backend of a cluster: the data in etcd, shared by
//!   every node (with etcd's request limits, see its docs).
//! * [`AppKv`] — one app's view of an engine, what a process holds.

mod error;
mod etcd;
mod names;
mod sled;
mod write;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

pub use self::etcd::{EtcdKv, MAX_WRITE_BYTES, MAX_WRITE_KEYS};
pub use self::sled::SledKv;
pub use error::KvError;
pub use names::{validate_bucket_name, DEFAULT_BUCKET};

/// Per-app limits, over all its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Keys the app may hold.
    pub max_keys: u64,
    /// Bytes (keys plus values) the app may hold.
    pub max_bytes: u64,
    /// Largest value.
    pub max_value_bytes: u64,
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Buckets one app may attach.
    pub max_buckets: usize,
}

impl Default for Quotas {
    /// 100 000 keys, 64 MiB, 1 MiB values, 1 KiB keys, 16 buckets.
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            max_bytes: 64 << 20,
            max_value_bytes: 1 << 20,
            max_key_bytes: 1024,
            max_buckets: 16,
        }
    }
}

/// What a bucket holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketInfo {
    /// Its name.
    pub name: String,
    /// Keys in it.
    pub keys: u64,
    /// Bytes of its keys and values.
    pub bytes: u64,
}

/// One page of a bucket's keys, in byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys.
    pub keys: Vec<String>,
    /// Where the next page starts (`None`: this was the last).
    pub cursor: Option<u64>,
}

/// A durable key-value store of every app's buckets.
///
/// Every write is durable when it returns `Ok` (it survives a crash of the
/// process or the machine). Writes to one app are linearizable: `increment`
/// and `compare_and_swap` from any number of threads (instances, replicas)
/// never lose an update. Keys are listed in byte order. An operation on a
/// bucket the app has not created fails with [`KvError::NoSuchBucket`].
pub trait KvEngine: Send + Sync {
    /// Creates `bucket` for `app`; `false` if it already existed.
    fn create_bucket(&self, app: &str, bucket: &str) -> Result<bool, KvError>;
    /// Deletes `bucket` and everything in it.
    fn delete_bucket(&self, app: &str, bucket: &str) -> Result<(), KvError>;
    /// `app`'s buckets, by name.
    fn buckets(&self, app: &str) -> Result<Vec<BucketInfo>, KvError>;
    /// Whether `app` has `bucket`.
    fn has_bucket(&self, app: &str, bucket: &str) -> Result<bool, KvError>;
    /// Deletes all of `app`'s buckets and data.
    fn delete_app(&self, app: &str) -> Result<(), KvError>;
    /// Moves all of `old`'s buckets and data to `new` (which has none), in
    /// one atomic step. The caller keeps both apps' processes stopped.
    fn rename_app(&self, old: &str, new: &str) -> Result<(), KvError>;
    /// The limits every app's data is held to.
    fn quotas(&self) -> Quotas;

    /// The value of `key`.
    fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key` to `value`.
    fn set(&self, app: &str, bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Deletes `key` (no error if absent).
    fn delete(&self, app: &str, bucket: &str, key: &str) -> Result<(), KvError>;
    /// Whether `key` has a value.
    fn exists(&self, app: &str, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(app, bucket, key)?.is_some())
    }
    /// Up to `limit` keys from position `cursor` (0 when `None`).
    fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, KvError>;

    /// Adds `delta` to the decimal number stored at `key` (absent: 0) and
    /// returns the new value. [`KvError::NotANumber`] if the value is not
    /// one, [`KvError::Overflow`] past `u64::MAX`.
    fn increment(&self, app: &str, bucket: &str, key: &str, delta: u64) -> Result<u64, KvError>;
    /// Sets `key` to `new` if its value is `expected` (`None`: absent);
    /// whether it did.
    fn compare_and_swap(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError>;

    /// The values of `keys`, in order.
    fn get_many(
        &self,
        app: &str,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError>;
    /// Sets all of `entries` at once (all or none).
    fn set_many(
        &self,
        app: &str,
        bucket: &str,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), KvError>;
    /// Deletes all of `keys` at once.
    fn delete_many(&self, app: &str, bucket: &str, keys: &[String]) -> Result<(), KvError>;
}

/// One app's data: what its processes are given.
#[derive(Clone)]
pub struct AppKv {
    engine: Arc<dyn KvEngine>,
    app: String,
}

impl std::fmt::Debug for AppKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKv").field("app", &self.app).finish()
    }
}

impl AppKv {
    /// `app`'s view of `engine`.
    pub fn new(engine: Arc<dyn KvEngine>, app: impl Into<String>) -> Self {
        Self {
            engine,
            app: app.into(),
        }
    }

    /// The app's name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The engine.
    pub fn engine(&self) -> &dyn KvEngine {
        &*self.engine
    }
}
