//! [`KvEngine`] on etcd, for a cluster: every node reads and writes the
//! same data. Under the connection's prefix:
//!
//! ```text
//! kv/e/<app> \0 <bucket> \0 <key>   → value
//! kv/u/<app> \0 <bucket>            → the bucket's usage (keys, bytes: two big-endian u64)
//! ```
//!
//! A write reads what it needs (the bucket's usage, the entries it
//! touches), works out the change with the same [`Writer`] as sled, and
//! commits entries and usage in one `Txn` guarded by the mod-revisions of
//! everything it read; if another node wrote meanwhile it starts again.
//! Within a node, writes to one app also take a local lock first, so a
//! node's own threads queue instead of racing through etcd.
//!
//! Limits that etcd adds (its defaults: requests up to 1.5 MiB, 128
//! operations per transaction): one write carries at most
//! [`MAX_WRITE_KEYS`] keys and [`MAX_WRITE_BYTES`] bytes of keys and
//! values; beyond them it fails with [`KvError::QuotaExceeded`], nothing
//! written. The app-wide quotas are checked against the usage the write
//! read; two nodes writing one app at the same moment may together pass
//! `max_keys`/`max_bytes` by one write's worth (and two nodes creating
//! buckets at once, `max_buckets` by one).

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, SortOrder, SortTarget, Txn, TxnOp,
};

use super::names::{app_prefix, bucket_prefix, entry_key, validate_bucket_name, validate_key};
use super::write::{self, decode_usage, encode_usage, AppLocks, Writer};
use super::{BucketInfo, KeyPage, KvEngine, KvError, Quotas};
use crate::etcd::{Etcd, EtcdError};

/// Most keys one write may carry (etcd allows 128 operations per
/// transaction; a write also compares and updates its bucket's usage).
pub const MAX_WRITE_KEYS: usize = 100;

/// Most bytes (keys and values) one write may carry (etcd refuses requests
/// over 1.5 MiB).
pub const MAX_WRITE_BYTES: usize = 1_400_000;

/// The key-value engine of a cluster.
pub struct EtcdKv {
    etcd: Etcd,
    quotas: Quotas,
    locks: AppLocks,
}

impl std::fmt::Debug for EtcdKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdKv").field("etcd", &self.etcd).finish()
    }
}

impl From<EtcdError> for KvError {
    fn from(e: EtcdError) -> Self {
        match e {
            EtcdError::Unreachable { .. } => KvError::Unavailable(e.to_string()),
            e => KvError::Storage(e.to_string()),
        }
    }
}

impl EtcdKv {
    /// The engine on `etcd`, holding every app to `quotas`.
    pub fn open(etcd: Etcd, quotas: Quotas) -> Self {
        Self {
            etcd,
            quotas,
            locks: AppLocks::new(),
        }
    }

    /// The full key of an entry key (`app \0 bucket \0 key`).
    fn entry(&self, k: &[u8]) -> Vec<u8> {
        let mut full = self.etcd.key("kv/e/");
        full.extend_from_slice(k);
        full
    }

    /// The full key of a bucket's usage, or with `bucket` `None`, the prefix
    /// of all the app's.
    fn usage_key(&self, app: &str, bucket: Option<&str>) -> Vec<u8> {
        let mut full = self.etcd.key("kv/u/");
        match bucket {
            Some(b) => {
                full.extend_from_slice(&bucket_prefix(app, b));
                full.pop();
            }
            None => full.extend_from_slice(&app_prefix(app)),
        }
        full
    }

    fn usage(&self, app: &str, bucket: &str) -> Result<Option<KeyValue>, KvError> {
        Ok(self.etcd.get(self.usage_key(app, Some(bucket)))?)
    }

    fn require(&self, app: &str, bucket: &str) -> Result<(), KvError> {
        match self.usage(app, bucket)? {
            Some(_) => Ok(()),
            None => Err(KvError::NoSuchBucket(bucket.to_string())),
        }
    }

    /// Runs `change` on `bucket` and commits it in one guarded Txn, again
    /// until no other node wrote what it read meanwhile.
    fn write<R>(
        &self,
        app: &str,
        bucket: &str,
        mut change: impl FnMut(&mut Writer<'_>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let _guard = self.locks.lock(app);
        let usage_key = self.usage_key(app, Some(bucket));
        loop {
            let usage = self
                .etcd
                .get(usage_key.clone())?
                .ok_or_else(|| KvError::NoSuchBucket(bucket.to_string()))?;
            let mut compares = vec![Compare::mod_revision(
                usage_key.clone(),
                CompareOp::Equal,
                usage.mod_revision(),
            )];
            let mut read = |k: &[u8]| -> Result<Option<Vec<u8>>, KvError> {
                let key = self.entry(k);
                let kv = self.etcd.get(key.clone())?;
                let revision = kv.as_ref().map_or(0, |kv| kv.mod_revision());
                compares.push(Compare::mod_revision(key, CompareOp::Equal, revision));
                Ok(kv.map(|kv| kv.into_key_value().1))
            };
            let mut writer = Writer::new(&mut read, &self.quotas, bucket_prefix(app, bucket));
            let result = change(&mut writer)?;
            if writer.pending.is_empty() {
                return Ok(result);
            }
            check_size(&writer)?;
            if writer.grows() {
                writer.check_quotas(app, &self.buckets(app)?)?;
            }
            let mut ops: Vec<TxnOp> = std::mem::take(&mut writer.pending)
                .into_iter()
                .map(|(k, v)| match v {
                    Some(v) => TxnOp::put(self.entry(&k), v, None),
                    None => TxnOp::delete(self.entry(&k), None),
                })
                .collect();
            ops.push(TxnOp::put(
                usage_key.clone(),
                writer.usage_after(decode_usage(usage.value())),
                None,
            ));
            drop(writer);
            let resp = self.etcd.txn(Txn::new().when(compares).and_then(ops))?;
            if resp.succeeded() {
                return Ok(result);
            }
        }
    }

    /// Deletes everything under `prefixes` in one Txn (guarded by
    /// `compares`); whether it ran.
    fn remove(&self, prefixes: Vec<Vec<u8>>, compares: Vec<Compare>) -> Result<bool, KvError> {
        let ops: Vec<TxnOp> = prefixes
            .into_iter()
            .map(|p| TxnOp::delete(p, Some(DeleteOptions::new().with_prefix())))
            .collect();
        Ok(self
            .etcd
            .txn(Txn::new().when(compares).and_then(ops))?
            .succeeded())
    }
}

/// One write within what etcd takes in one request.
fn check_size(writer: &Writer<'_>) -> Result<(), KvError> {
    let keys = writer.pending.len();
    if keys > MAX_WRITE_KEYS {
        return Err(KvError::QuotaExceeded(format!(
            "one write to a cluster's data may change at most {MAX_WRITE_KEYS} keys; this one changes {keys}: split it"
        )));
    }
    let bytes: usize = writer
        .pending
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
        .sum();
    if bytes > MAX_WRITE_BYTES {
        return Err(KvError::QuotaExceeded(format!(
            "one write to a cluster's data may carry at most {MAX_WRITE_BYTES} bytes; this one carries {bytes}: split it"
        )));
    }
    Ok(())
}

impl KvEngine for EtcdKv {
    fn create_bucket(&self, app: &str, bucket: &str) -> Result<bool, KvError> {
        validate_bucket_name(bucket)?;
        let _guard = self.locks.lock(app);
        if self.usage(app, bucket)?.is_some() {
            return Ok(false);
        }
        write::check_bucket_count(app, self.buckets(app)?.len(), &self.quotas)?;
        let key = self.usage_key(app, Some(bucket));
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, encode_usage(0, 0), None)]);
        // Lost to another node creating it: it exists, made by them.
        Ok(self.etcd.txn(txn)?.succeeded())
    }

    fn delete_bucket(&self, app: &str, bucket: &str) -> Result<(), KvError> {
        let _guard = self.locks.lock(app);
        let usage = self.usage_key(app, Some(bucket));
        let exists = Compare::version(usage.clone(), CompareOp::Greater, 0);
        // The usage key exactly: it is a prefix of other buckets' (`b`, `b2`).
        let entries = self.entry(&bucket_prefix(app, bucket));
        let txn = Txn::new().when([exists]).and_then([
            TxnOp::delete(entries, Some(DeleteOptions::new().with_prefix())),
            TxnOp::delete(usage, None),
        ]);
        if self.etcd.txn(txn)?.succeeded() {
            Ok(())
        } else {
            Err(KvError::NoSuchBucket(bucket.to_string()))
        }
    }

    fn buckets(&self, app: &str) -> Result<Vec<BucketInfo>, KvError> {
        let prefix = self.usage_key(app, None);
        Ok(self
            .etcd
            .get_prefix(prefix.clone())?
            .iter()
            .map(|kv| {
                let name = String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned();
                let (keys, bytes) = decode_usage(kv.value());
                BucketInfo { name, keys, bytes }
            })
            .collect())
    }

    fn has_bucket(&self, app: &str, bucket: &str) -> Result<bool, KvError> {
        Ok(self.usage(app, bucket)?.is_some())
    }

    fn delete_app(&self, app: &str) -> Result<(), KvError> {
        let _guard = self.locks.lock(app);
        let prefixes = vec![self.entry(&app_prefix(app)), self.usage_key(app, None)];
        self.remove(prefixes, Vec::new())?;
        Ok(())
    }

    fn rename_app(&self, _old: &str, _new: &str) -> Result<(), KvError> {
        Err(KvError::Unavailable(
            "renaming an app is not supported in a cluster yet".to_string(),
        ))
    }

    fn quotas(&self) -> Quotas {
        self.quotas
    }

    super::write::write_ops!();

    fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.require(app, bucket)?;
        validate_key(key, &self.quotas)?;
        let k = self.entry(&entry_key(&bucket_prefix(app, bucket), key));
        Ok(self.etcd.get(k)?.map(|kv| kv.into_key_value().1))
    }

    fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, KvError> {
        self.require(app, bucket)?;
        let prefix = self.entry(&bucket_prefix(app, bucket));
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        // etcd has no offset: read the keys up to the page's end (and one
        // more, to know whether there is a next page).
        let want = skip.saturating_add(limit).saturating_add(1);
        let options = GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_sort(SortTarget::Key, SortOrder::Ascend)
            .with_limit(i64::try_from(want).unwrap_or(0));
        let kvs = self
            .etcd
            .block_on(|mut c| async move { c.get(prefix, Some(options)).await })?
            .take_kvs();
        let base = self.entry(&bucket_prefix(app, bucket)).len();
        let mut keys: Vec<String> = kvs
            .iter()
            .skip(skip)
            .map(|kv| String::from_utf8_lossy(&kv.key()[base..]).into_owned())
            .collect();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let cursor = more.then(|| (skip + keys.len()) as u64);
        Ok(KeyPage { keys, cursor })
    }
}

#[cfg(test)]
mod tests {
    //! The engine suite against a real etcd, and etcd's own limits.
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::etcd::testing::shared;
    use crate::etcd::DEFAULT_LEASE_TTL;

    /// The engine under a prefix made of `dir`, so reopening sees the data.
    fn open(dir: &Path, quotas: Quotas) -> Arc<dyn KvEngine> {
        let prefix = format!("/test{}/", dir.display());
        let etcd = Etcd::connect(&shared().endpoints(), &prefix, DEFAULT_LEASE_TTL)
            .expect("connect to the test etcd");
        Arc::new(EtcdKv::open(etcd, quotas))
    }

    crate::data::tests::engine_tests!(open);

    #[test]
    fn writes_beyond_one_etcd_request_fail_whole_and_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open(dir.path(), Quotas::default());
        kv.create_bucket("app", "b").unwrap();
        let many: Vec<(String, Vec<u8>)> = (0..=MAX_WRITE_KEYS)
            .map(|i| (format!("k{i}"), b"v".to_vec()))
            .collect();
        let err = kv.set_many("app", "b", &many).unwrap_err();
        assert!(matches!(err, KvError::QuotaExceeded(_)), "{err}");
        assert!(err.to_string().contains("split it"), "{err}");
        assert_eq!(kv.buckets("app").unwrap()[0].keys, 0, "nothing written");
        kv.set_many("app", "b", &many[..MAX_WRITE_KEYS]).unwrap();
        let big: Vec<(String, Vec<u8>)> = (0..2)
            .map(|i| (format!("big{i}"), vec![0; 1 << 20]))
            .collect();
        let err = kv.set_many("app", "b", &big).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");
        // One value at the per-value limit fits.
        kv.set("app", "b", "big", &vec![0; 1 << 20]).unwrap();
    }

    #[test]
    fn two_nodes_incrementing_one_key_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            open(dir.path(), Quotas::default()),
            open(dir.path(), Quotas::default()),
        );
        a.create_bucket("app", "b").unwrap();
        let threads: Vec<_> = [a.clone(), b, a.clone()]
            .into_iter()
            .map(|kv| {
                std::thread::spawn(move || {
                    for _ in 0..30 {
                        kv.increment("app", "b", "n", 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(a.get("app", "b", "n").unwrap().as_deref(), Some(&b"90"[..]));
    }
}
