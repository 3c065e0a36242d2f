//! App data: `/apps/APP/kv…`, the key-value buckets an app's components
//! open with `wasi:keyvalue` (`wpaas kv:*`).

use serde::{Deserialize, Serialize};

/// `POST /apps/APP/kv`: attach a bucket. Answers (201) its [`Bucket`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBucket {
    /// 1–63 of `a-z 0-9 - _`, starting with a letter or digit.
    pub bucket: String,
}

/// One bucket and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Its name (what `wasi:keyvalue/store.open` takes).
    pub name: String,
    /// Keys in it.
    pub keys: u64,
    /// Bytes of its keys and values.
    pub bytes: u64,
}

/// The limits an app's data is held to, over all its buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Keys.
    pub max_keys: u64,
    /// Bytes of keys and values.
    pub max_bytes: u64,
    /// Bytes of one value.
    pub max_value_bytes: u64,
    /// Bytes of one key.
    pub max_key_bytes: u64,
    /// Buckets.
    pub max_buckets: u64,
}

/// `GET /apps/APP/kv`: the app's buckets, totals and quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvInfo {
    /// Its buckets, by name.
    pub buckets: Vec<Bucket>,
    /// Keys over all buckets.
    pub keys: u64,
    /// Bytes over all buckets.
    pub bytes: u64,
    /// Its limits.
    pub quotas: Quotas,
}

/// `PUT /apps/APP/kv/BUCKET/keys/KEY`: set a value. Answers the
/// [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetValue {
    /// The value (stored as its UTF-8 bytes).
    pub value: String,
}

/// `GET /apps/APP/kv/BUCKET/keys/KEY`: one entry (404 when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value as text (bytes that are not UTF-8 are replaced by U+FFFD).
    pub value: String,
    /// The value's length in bytes.
    pub bytes: u64,
}

/// `DELETE /apps/APP/kv/BUCKET/keys/KEY` and `DELETE /apps/APP/kv/BUCKET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The key or bucket deleted.
    pub deleted: String,
}
