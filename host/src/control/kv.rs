//! `wpaas kv:*`: an app's key-value buckets, as [`Platform`] methods. The
//! engine ([`crate::data`]) does the work; this maps its errors to the
//! API's and checks that the app exists.

use wpaas_api::kv::{Bucket, Entry, KvInfo, Quotas};

use super::error::{PlatformError, PlatformResult};
use super::platform::Platform;
use crate::data::{BucketInfo, KvEngine, KvError};

impl From<KvError> for PlatformError {
    fn from(err: KvError) -> Self {
        match err {
            KvError::NoSuchBucket(_) => Self::not_found(err.to_string()),
            KvError::BucketExists(_) => Self::conflict(err.to_string()),
            KvError::InvalidBucketName(_)
            | KvError::InvalidKey(_)
            | KvError::NotANumber(_)
            | KvError::Overflow(_) => Self::invalid(err.to_string()),
            KvError::QuotaExceeded(_) => Self::too_large(err.to_string()),
            KvError::Unavailable(_) => Self::Unavailable(err.to_string()),
            KvError::Storage(_) => Self::internal(err),
        }
    }
}

fn wire(info: BucketInfo) -> Bucket {
    Bucket {
        name: info.name,
        keys: info.keys,
        bytes: info.bytes,
    }
}

impl Platform {
    /// Runs `op` on the engine off the async executor (writes wait for the
    /// disk), after checking that `app` exists.
    async fn on_kv<T: Send + 'static>(
        &self,
        app: &str,
        op: impl FnOnce(&dyn KvEngine, &str) -> Result<T, KvError> + Send + 'static,
    ) -> PlatformResult<T> {
        self.store().app(app)?;
        let kv = self.kv().clone();
        let app = app.to_string();
        tokio::task::spawn_blocking(move || op(&*kv, &app))
            .await
            .map_err(PlatformError::internal)?
            .map_err(Into::into)
    }

    /// `kv:create`: attaches `bucket` to `app` (201); a bucket that exists
    /// is a conflict.
    pub async fn create_bucket(&self, app: &str, bucket: &str) -> PlatformResult<Bucket> {
        let name = bucket.to_string();
        let created = self
            .on_kv(app, move |kv, app| {
                if !kv.create_bucket(app, &name)? {
                    return Err(KvError::BucketExists(name));
                }
                Ok(name)
            })
            .await?;
        self.logs()
            .push(app, "api", &format!("Attached key-value bucket {created}"));
        Ok(Bucket {
            name: created,
            ..Bucket::default()
        })
    }

    /// `kv:destroy`: deletes `bucket` and its data.
    pub async fn delete_bucket(&self, app: &str, bucket: &str) -> PlatformResult<()> {
        let name = bucket.to_string();
        self.on_kv(app, move |kv, app| kv.delete_bucket(app, &name))
            .await?;
        self.logs()
            .push(app, "api", &format!("Destroyed key-value bucket {bucket}"));
        Ok(())
    }

    /// `kv:list` / `kv:info`: buckets, totals, quotas.
    pub async fn kv_info(&self, app: &str) -> PlatformResult<KvInfo> {
        let (buckets, q) = self
            .on_kv(app, |kv, app| Ok((kv.buckets(app)?, kv.quotas())))
            .await?;
        let buckets: Vec<Bucket> = buckets.into_iter().map(wire).collect();
        Ok(KvInfo {
            keys: buckets.iter().map(|b| b.keys).sum(),
            bytes: buckets.iter().map(|b| b.bytes).sum(),
            buckets,
            quotas: Quotas {
                max_keys: q.max_keys,
                max_bytes: q.max_bytes,
                max_value_bytes: q.max_value_bytes,
                max_key_bytes: q.max_key_bytes as u64,
                max_buckets: q.max_buckets as u64,
            },
        })
    }

    /// `kv:get`: the entry, or not found.
    pub async fn kv_get(&self, app: &str, bucket: &str, key: &str) -> PlatformResult<Entry> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let value = self
            .on_kv(app, move |kv, app| kv.get(app, &b, &k))
            .await?
            .ok_or_else(|| {
                PlatformError::not_found(format!("no key {key:?} in bucket {bucket}"))
            })?;
        Ok(Entry {
            key: key.to_string(),
            bytes: value.len() as u64,
            value: String::from_utf8_lossy(&value).into_owned(),
        })
    }

    /// `kv:set`: stores `value` (durably) and returns the entry.
    pub async fn kv_set(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
        value: String,
    ) -> PlatformResult<Entry> {
        let (b, k, v) = (bucket.to_string(), key.to_string(), value.clone());
        self.on_kv(app, move |kv, app| kv.set(app, &b, &k, v.as_bytes()))
            .await?;
        Ok(Entry {
            key: key.to_string(),
            bytes: value.len() as u64,
            value,
        })
    }

    /// `kv:delete`: removes `key` (absent is fine).
    pub async fn kv_delete(&self, app: &str, bucket: &str, key: &str) -> PlatformResult<()> {
        let (b, k) = (bucket.to_string(), key.to_string());
        self.on_kv(app, move |kv, app| kv.delete(app, &b, &k)).await
    }
}
