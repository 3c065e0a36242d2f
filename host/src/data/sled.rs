//! [`KvEngine`] on sled: one tree holds every app's entries
//! (`app \0 bucket \0 key → value`) and, under keys starting with NUL
//! (which no app name does), each bucket's usage
//! (`\0 app \0 bucket → keys, bytes`).
//!
//! Writes to one app are serialized by a lock striped over app names and
//! applied as one atomic sled batch (entries and usage together), then the
//! database is flushed before the call returns: an acknowledged write is on
//! disk. Reads take no lock.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;

use super::names::{app_prefix, bucket_prefix, entry_key, validate_bucket_name, validate_key};
use super::{BucketInfo, KeyPage, KvEngine, KvError, Quotas};

/// Locks app writes are striped over.
const STRIPES: usize = 64;

/// The key-value engine of one node.
pub struct SledKv {
    db: sled::Db,
    tree: sled::Tree,
    quotas: Quotas,
    locks: Vec<Mutex<()>>,
}

fn storage(err: sled::Error) -> KvError {
    KvError::Storage(err.to_string())
}

/// `\0 app \0 bucket`: a bucket's usage record.
fn usage_key(app: &str, bucket: &str) -> Vec<u8> {
    let mut k = vec![0];
    k.extend_from_slice(&bucket_prefix(app, bucket));
    k.pop();
    k
}

fn decode_usage(bytes: &[u8]) -> (u64, u64) {
    let word = |i: usize| {
        bytes
            .get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    };
    (word(0), word(8))
}

fn encode_usage(keys: u64, bytes: u64) -> Vec<u8> {
    let mut v = keys.to_be_bytes().to_vec();
    v.extend_from_slice(&bytes.to_be_bytes());
    v
}

/// Pending changes to one bucket while the app's lock is held.
struct Writer<'a> {
    kv: &'a SledKv,
    prefix: Vec<u8>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    keys: i64,
    bytes: i64,
}

impl Writer<'_> {
    fn current(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let k = entry_key(&self.prefix, key);
        match self.pending.get(&k) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.kv.tree.get(&k).map_err(storage)?.map(|v| v.to_vec())),
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let quotas = &self.kv.quotas;
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

    fn remove(&mut self, key: &str) -> Result<(), KvError> {
        validate_key(key, &self.kv.quotas)?;
        if let Some(old) = self.current(key)? {
            self.keys -= 1;
            self.bytes -= (key.len() + old.len()) as i64;
            self.pending.insert(entry_key(&self.prefix, key), None);
        }
        Ok(())
    }
}

impl SledKv {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, quotas: Quotas) -> Result<Self, KvError> {
        let db = sled::Config::new().path(path).open().map_err(storage)?;
        let tree = db.open_tree("kv").map_err(storage)?;
        Ok(Self {
            db,
            tree,
            quotas,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    fn lock(&self, app: &str) -> std::sync::MutexGuard<'_, ()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        app.hash(&mut h);
        let stripe = (h.finish() as usize) % STRIPES;
        // A panic while holding it left nothing half-written (the batch is
        // atomic), so a poisoned lock is still good.
        self.locks[stripe]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn flush(&self) -> Result<(), KvError> {
        self.db.flush().map(|_| ()).map_err(storage)
    }

    fn usage(&self, app: &str, bucket: &str) -> Result<Option<(u64, u64)>, KvError> {
        Ok(self
            .tree
            .get(usage_key(app, bucket))
            .map_err(storage)?
            .map(|v| decode_usage(&v)))
    }

    fn require(&self, app: &str, bucket: &str) -> Result<(), KvError> {
        match self.usage(app, bucket)? {
            Some(_) => Ok(()),
            None => Err(KvError::NoSuchBucket(bucket.to_string())),
        }
    }

    /// Runs `change` on `bucket` under the app's lock, checks the quotas
    /// against what it would add, applies it atomically and flushes.
    fn write<R>(
        &self,
        app: &str,
        bucket: &str,
        change: impl FnOnce(&mut Writer<'_>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let guard = self.lock(app);
        let (keys, bytes) = self
            .usage(app, bucket)?
            .ok_or_else(|| KvError::NoSuchBucket(bucket.to_string()))?;
        let mut writer = Writer {
            kv: self,
            prefix: bucket_prefix(app, bucket),
            pending: BTreeMap::new(),
            keys: 0,
            bytes: 0,
        };
        let result = change(&mut writer)?;
        if writer.pending.is_empty() {
            return Ok(result);
        }
        if writer.keys > 0 || writer.bytes > 0 {
            let (app_keys, app_bytes) = self
                .buckets(app)?
                .iter()
                .fold((0, 0), |(k, b), i| (k + i.keys, b + i.bytes));
            let q = &self.quotas;
            if writer.keys > 0 && app_keys.saturating_add(writer.keys as u64) > q.max_keys {
                return Err(KvError::QuotaExceeded(format!(
                    "{app} holds {app_keys} keys; the limit is {}",
                    q.max_keys
                )));
            }
            if writer.bytes > 0 && app_bytes.saturating_add(writer.bytes as u64) > q.max_bytes {
                return Err(KvError::QuotaExceeded(format!(
                    "{app} holds {app_bytes} bytes; writing {} more would pass the limit of {}",
                    writer.bytes, q.max_bytes
                )));
            }
        }
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut writer.pending) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        let keys = (keys as i64 + writer.keys).max(0) as u64;
        let bytes = (bytes as i64 + writer.bytes).max(0) as u64;
        batch.insert(usage_key(app, bucket), encode_usage(keys, bytes));
        self.tree.apply_batch(batch).map_err(storage)?;
        // Whoever reads this write before it is on disk answers only after
        // their own flush, which covers it.
        drop(guard);
        self.flush()?;
        Ok(result)
    }

    /// Removes everything under `prefixes`, and `also`, in one batch.
    fn remove(&self, prefixes: &[Vec<u8>], also: Option<Vec<u8>>) -> Result<(), KvError> {
        let mut batch = sled::Batch::default();
        if let Some(key) = also {
            batch.remove(key);
        }
        for prefix in prefixes {
            for entry in self.tree.scan_prefix(prefix).keys() {
                batch.remove(entry.map_err(storage)?);
            }
        }
        self.tree.apply_batch(batch).map_err(storage)?;
        self.flush()
    }
}

impl KvEngine for SledKv {
    fn create_bucket(&self, app: &str, bucket: &str) -> Result<bool, KvError> {
        validate_bucket_name(bucket)?;
        let _guard = self.lock(app);
        if self.usage(app, bucket)?.is_some() {
            return Ok(false);
        }
        let count = self.buckets(app)?.len();
        if count >= self.quotas.max_buckets {
            return Err(KvError::QuotaExceeded(format!(
                "{app} has {count} buckets; the limit is {}",
                self.quotas.max_buckets
            )));
        }
        self.tree
            .insert(usage_key(app, bucket), encode_usage(0, 0))
            .map_err(storage)?;
        self.flush()?;
        Ok(true)
    }

    fn delete_bucket(&self, app: &str, bucket: &str) -> Result<(), KvError> {
        let _guard = self.lock(app);
        self.require(app, bucket)?;
        // The usage key exactly: it is a prefix of other buckets' (`b`, `b2`).
        self.remove(&[bucket_prefix(app, bucket)], Some(usage_key(app, bucket)))
    }

    fn buckets(&self, app: &str) -> Result<Vec<BucketInfo>, KvError> {
        let mut prefix = vec![0];
        prefix.extend_from_slice(&app_prefix(app));
        self.tree
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry.map_err(storage)?;
                let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                let (keys, bytes) = decode_usage(&v);
                Ok(BucketInfo { name, keys, bytes })
            })
            .collect()
    }

    fn has_bucket(&self, app: &str, bucket: &str) -> Result<bool, KvError> {
        Ok(self.usage(app, bucket)?.is_some())
    }

    fn delete_app(&self, app: &str) -> Result<(), KvError> {
        let _guard = self.lock(app);
        let mut usage = vec![0];
        usage.extend_from_slice(&app_prefix(app));
        self.remove(&[app_prefix(app), usage], None)
    }

    fn quotas(&self) -> Quotas {
        self.quotas
    }

    fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.require(app, bucket)?;
        validate_key(key, &self.quotas)?;
        let k = entry_key(&bucket_prefix(app, bucket), key);
        Ok(self.tree.get(k).map_err(storage)?.map(|v| v.to_vec()))
    }

    fn set(&self, app: &str, bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.write(app, bucket, |w| w.put(key, value.to_vec()))
    }

    fn delete(&self, app: &str, bucket: &str, key: &str) -> Result<(), KvError> {
        self.write(app, bucket, |w| w.remove(key))
    }

    fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, KvError> {
        self.require(app, bucket)?;
        let prefix = bucket_prefix(app, bucket);
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let mut keys = Vec::new();
        let mut more = false;
        for entry in self.tree.scan_prefix(&prefix).keys().skip(skip) {
            let k = entry.map_err(storage)?;
            if keys.len() == limit {
                more = true;
                break;
            }
            keys.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        let cursor = more.then(|| (skip + keys.len()) as u64);
        Ok(KeyPage { keys, cursor })
    }

    fn increment(&self, app: &str, bucket: &str, key: &str, delta: u64) -> Result<u64, KvError> {
        self.write(app, bucket, |w| {
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
            if w.current(key)?.as_deref() != expected {
                return Ok(false);
            }
            w.put(key, new.to_vec())?;
            Ok(true)
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
}
