//! What can go wrong with app data, in words a user can act on.

/// An error of the key-value engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The app has no such bucket (`wpaas kv:create` attaches one).
    #[error("no bucket {0:?}; create it with `wpaas kv:create {0}`")]
    NoSuchBucket(String),
    /// The bucket exists already.
    #[error("bucket {0:?} already exists")]
    BucketExists(String),
    /// A bucket name breaks the naming rules.
    #[error("invalid bucket name {0:?}: use 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit")]
    InvalidBucketName(String),
    /// A key is too long.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A per-app quota would be exceeded; nothing was written.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// `increment` on a value that is not a decimal u64.
    #[error("the value of {0:?} is not a number")]
    NotANumber(String),
    /// `increment` past `u64::MAX`.
    #[error("incrementing {0:?} would overflow")]
    Overflow(String),
    /// The storage is out of reach (a cluster's etcd is down): the message
    /// says where. Retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The storage failed.
    #[error("storage error: {0}")]
    Storage(String),
}
