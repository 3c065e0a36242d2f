//! What every engine does the same way around a write: per-app locks, the
//! usage record of a bucket, the pending changes of one write with their
//! effect on usage, the quota check, and the operations that read before
//! they write (`increment`, `compare_and_swap`). An engine supplies how to
//! read a stored entry and how to apply the result atomically.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use super::names::{entry_key, validate_key};
use super::{BucketInfo, KvError, Quotas};

/// Locks app writes are striped over.
const STRIPES: usize = 64;

/// Writes to one app, serialized within this process.
pub(super) struct AppLocks(Vec<Mutex<()>>);

impl AppLocks {
    pub fn new() -> Self {
        Self((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    pub fn lock(&self, app: &str) -> MutexGuard<'_, ()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        app.hash(&mut h);
        let stripe = (h.finish() as usize) % STRIPES;
        // A panic while holding it left nothing half-written (writes are
        // applied atomically), so a poisoned lock is still good.
        self.0[stripe]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A bucket's usage, stored as two big-endian u64: keys, bytes.
pub(super) fn decode_usage(bytes: &[u8]) -> (u64, u64) {
    let word = |i: usize| {
        bytes
            .get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    };
    (word(0), word(8))
}

pub(super) fn encode_usage(keys: u64, bytes: u64) -> Vec<u8> {
    let mut v = keys.to_be_bytes().to_vec();
    v.extend_from_slice(&bytes.to_be_bytes());
    v
}

/// Reads a stored entry (by its full entry key) for a [`Writer`].
pub(super) type Read<'a> = dyn FnMut(&[u8]) -> Result<Option<Vec<u8>>, KvError> + 'a;

/// Pending changes to one bucket, and what they add to its usage.
pub(super) struct Writer<'a> {
    read: &'a mut Read<'a>,
    quotas: &'a Quotas,
    prefix: Vec<u8>,
    /// Entry key → new value (`None`: delete).
    pub pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys added (negative: removed).
    pub keys: i64,
    /// Bytes added (negative: freed).
    pub bytes: i64,
}

impl<'a> Writer<'a> {
    /// A writer of the bucket whose entries start with `prefix`.
    pub fn new(read: &'a mut Read<'a>, quotas: &'a Quotas, prefix: Vec<u8>) -> Self {
        Self {
            read,
            quotas,
            prefix,
            pending: BTreeMap::new(),
            keys: 0,
            bytes: 0,
        }
    }

    /// The value of `key` as this write leaves it so far.
    pub fn current(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let k = entry_key(&self.prefix, key);
        match self.pending.get(&k) {
            Some(v) => Ok(v.clone()),
            None => (self.read)(&k),
        }
    }

    pub fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let quotas = self.quotas;
        validate_key(key, quotas)?;
        if value.len() as u64 > quotas.max_value_bytes {
            return Err(KvError::QuotaExceeded(format!(
                "the value of {key:?} is {} bytes; the limit is {} per value",
                value.len(),
                quotas.max_value_bytes
            )));
        }
        let old = self.current(key)?;
        match &old {
            Some(old) => self.bytes += value.len() as i64 - old.len() as i64,
            None => {
                self.keys += 1;
                self.bytes += (key.len() + value.len()) as i64;
            }
        }
        self.pending
            .insert(entry_key(&self.prefix, key), Some(value));
        Ok(())
    }

    pub fn remove(&mut self, key: &str) -> Result<(), KvError> {
        validate_key(key, self.quotas)?;
        if let Some(old) = self.current(key)? {
            self.keys -= 1;
            self.bytes -= (key.len() + old.len()) as i64;
            self.pending.insert(entry_key(&self.prefix, key), None);
        }
        Ok(())
    }

    /// Whether the write adds keys or bytes (and so needs the quota check).
    pub fn grows(&self) -> bool {
        self.keys > 0 || self.bytes > 0
    }

    /// Checks the app's quotas against what this write adds to `buckets`
    /// (all the app's buckets as stored).
    pub fn check_quotas(&self, app: &str, buckets: &[BucketInfo]) -> Result<(), KvError> {
        let (app_keys, app_bytes) = buckets
            .iter()
            .fold((0u64, 0u64), |(k, b), i| (k + i.keys, b + i.bytes));
        let q = self.quotas;
        if self.keys > 0 && app_keys.saturating_add(self.keys as u64) > q.max_keys {
            return Err(KvError::QuotaExceeded(format!(
                "{app} holds {app_keys} keys; the limit is {}",
                q.max_keys
            )));
        }
        if self.bytes > 0 && app_bytes.saturating_add(self.bytes as u64) > q.max_bytes {
            return Err(KvError::QuotaExceeded(format!(
                "{app} holds {app_bytes} bytes; writing {} more would pass the limit of {}",
                self.bytes, q.max_bytes
            )));
        }
        Ok(())
    }

    /// The bucket's usage after this write, from `(keys, bytes)` before.
    pub fn usage_after(&self, (keys, bytes): (u64, u64)) -> Vec<u8> {
        let keys = (keys as i64 + self.keys).max(0) as u64;
        let bytes = (bytes as i64 + self.bytes).max(0) as u64;
        encode_usage(keys, bytes)
    }
}

/// `increment`, inside a write.
pub(super) fn increment(w: &mut Writer<'_>, key: &str, delta: u64) -> Result<u64, KvError> {
    let current = match w.current(key)? {
        None => 0,
        Some(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| KvError::NotANumber(key.to_string()))?,
    };
    let new = current
        .checked_add(delta)
        .ok_or_else(|| KvError::Overflow(key.to_string()))?;
    w.put(key, new.to_string().into_bytes())?;
    Ok(new)
}

/// `compare_and_swap`, inside a write.
pub(super) fn compare_and_swap(
    w: &mut Writer<'_>,
    key: &str,
    expected: Option<&[u8]>,
    new: &[u8],
) -> Result<bool, KvError> {
    if w.current(key)?.as_deref() != expected {
        return Ok(false);
    }
    w.put(key, new.to_vec())?;
    Ok(true)
}

/// The error of a bucket count at its quota, if it is.
pub(super) fn check_bucket_count(app: &str, count: usize, quotas: &Quotas) -> Result<(), KvError> {
    if count >= quotas.max_buckets {
        return Err(KvError::QuotaExceeded(format!(
            "{app} has {count} buckets; the limit is {}",
            quotas.max_buckets
        )));
    }
    Ok(())
}

/// The [`KvEngine`](super::KvEngine) methods that are one `self.write(...)`
/// (or reads of `get`), the same in every engine: expands inside
/// `impl KvEngine for X` where `X` has `fn write<R>(&self, app, bucket,
/// change: impl FnMut(&mut Writer) -> Result<R, KvError>)`.
macro_rules! write_ops {
    () => {
        fn set(&self, app: &str, bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
            self.write(app, bucket, |w| w.put(key, value.to_vec()))
        }

        fn delete(&self, app: &str, bucket: &str, key: &str) -> Result<(), KvError> {
            self.write(app, bucket, |w| w.remove(key))
        }

        fn increment(
            &self,
            app: &str,
            bucket: &str,
            key: &str,
            delta: u64,
        ) -> Result<u64, KvError> {
            self.write(app, bucket, |w| {
                $crate::data::write::increment(w, key, delta)
            })
        }

        fn compare_and_swap(
            &self,
            app: &str,
            bucket: &str,
            key: &str,
            expected: Option<&[u8]>,
            new: &[u8],
        ) -> Result<bool, KvError> {
            self.write(app, bucket, |w| {
                $crate::data::write::compare_and_swap(w, key, expected, new)
            })
        }

        fn get_many(
            &self,
            app: &str,
            bucket: &str,
            keys: &[String],
        ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
            keys.iter().map(|k| self.get(app, bucket, k)).collect()
        }

        fn set_many(
            &self,
            app: &str,
            bucket: &str,
            entries: &[(String, Vec<u8>)],
        ) -> Result<(), KvError> {
            self.write(app, bucket, |w| {
                entries.iter().try_for_each(|(k, v)| w.put(k, v.clone()))
            })
        }

        fn delete_many(&self, app: &str, bucket: &str, keys: &[String]) -> Result<(), KvError> {
            self.write(app, bucket, |w| keys.iter().try_for_each(|k| w.remove(k)))
        }
    };
}
pub(super) use write_ops;
