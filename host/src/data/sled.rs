//! [`KvEngine`] on sled: one tree holds every app's entries
//! (`app \0 bucket \0 key → value`) and, under keys starting with NUL
//! (which no app name does), each bucket's usage
//! (`\0 app \0 bucket → keys, bytes`).
//!
//! Writes to one app are serialized by a lock striped over app names and
//! applied as one atomic sled batch (entries and usage together), then the
//! database is flushed before the call returns: an acknowledged write is on
//! disk. Reads take no lock.

use std::path::Path;

use super::names::{app_prefix, bucket_prefix, entry_key, validate_bucket_name, validate_key};
use super::write::{self, decode_usage, encode_usage, AppLocks, Writer};
use super::{BucketInfo, KeyPage, KvEngine, KvError, Quotas};

/// The key-value engine of one node.
pub struct SledKv {
    db: sled::Db,
    tree: sled::Tree,
    quotas: Quotas,
    locks: AppLocks,
}

fn storage(err: sled::Error) -> KvError {
    KvError::Storage(err.to_string())
}

/// Where all of an app's records start: its entries (`app \0`) and its
/// buckets' usage (`\0 app \0`).
fn app_prefixes(app: &str) -> [Vec<u8>; 2] {
    let mut usage = vec![0];
    usage.extend_from_slice(&app_prefix(app));
    [app_prefix(app), usage]
}

/// `\0 app \0 bucket`: a bucket's usage record.
fn usage_key(app: &str, bucket: &str) -> Vec<u8> {
    let mut k = vec![0];
    k.extend_from_slice(&bucket_prefix(app, bucket));
    k.pop();
    k
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
            locks: AppLocks::new(),
        })
    }

    fn lock(&self, app: &str) -> std::sync::MutexGuard<'_, ()> {
        self.locks.lock(app)
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
        let usage = self
            .usage(app, bucket)?
            .ok_or_else(|| KvError::NoSuchBucket(bucket.to_string()))?;
        let tree = &self.tree;
        let mut read = |k: &[u8]| Ok(tree.get(k).map_err(storage)?.map(|v| v.to_vec()));
        let mut writer = Writer::new(&mut read, &self.quotas, bucket_prefix(app, bucket));
        let result = change(&mut writer)?;
        if writer.pending.is_empty() {
            return Ok(result);
        }
        if writer.grows() {
            writer.check_quotas(app, &self.buckets(app)?)?;
        }
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut writer.pending) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch.insert(usage_key(app, bucket), writer.usage_after(usage));
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
        write::check_bucket_count(app, self.buckets(app)?.len(), &self.quotas)?;
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
        self.remove(&app_prefixes(app), None)
    }

    fn rename_app(&self, old: &str, new: &str) -> Result<(), KvError> {
        // One lock: both names' stripes may be one, and `new` has no
        // writer (its app does not run yet).
        let _guard = self.lock(old);
        let mut batch = sled::Batch::default();
        for (from, to) in app_prefixes(old).into_iter().zip(app_prefixes(new)) {
            for entry in self.tree.scan_prefix(&from) {
                let (key, value) = entry.map_err(storage)?;
                let mut moved = to.clone();
                moved.extend_from_slice(&key[from.len()..]);
                batch.insert(moved, value);
                batch.remove(key);
            }
        }
        self.tree.apply_batch(batch).map_err(storage)?;
        self.flush()
    }

    fn quotas(&self) -> Quotas {
        self.quotas
    }

    super::write::write_ops!();

    fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.require(app, bucket)?;
        validate_key(key, &self.quotas)?;
        let k = entry_key(&bucket_prefix(app, bucket), key);
        Ok(self.tree.get(k).map_err(storage)?.map(|v| v.to_vec()))
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
}

#[cfg(test)]
mod tests {
    //! The engine suite, run against sled.
    use std::path::Path;
    use std::sync::Arc;

    use super::*;

    fn open(dir: &Path, quotas: Quotas) -> Arc<dyn KvEngine> {
        Arc::new(SledKv::open(&dir.join("kv"), quotas).expect("open the sled engine"))
    }

    crate::data::tests::engine_tests!(open);

    #[test]
    fn renaming_an_app_moves_its_buckets_and_entries_and_no_other_apps() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open(dir.path(), Quotas::default());
        kv.create_bucket("old", "notes").unwrap();
        kv.set("old", "notes", "first", b"kept").unwrap();
        // A name that starts like the renamed one keeps its data.
        kv.create_bucket("old-too", "notes").unwrap();
        kv.set("old-too", "notes", "first", b"other").unwrap();
        kv.rename_app("old", "new").unwrap();
        assert_eq!(kv.get("new", "notes", "first").unwrap().unwrap(), b"kept");
        assert_eq!(kv.buckets("new").unwrap().len(), 1);
        assert!(kv.buckets("old").unwrap().is_empty());
        assert!(!kv.has_bucket("old", "notes").unwrap());
        let other = kv.get("old-too", "notes", "first").unwrap().unwrap();
        assert_eq!(other, b"other");
    }
}
