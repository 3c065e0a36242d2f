//! What a component sees of its app's data beyond WASI:
//!
//! * `wasi:config/store` — the release's config vars (the same ones it gets
//!   as environment variables), as `wasmtime serve -Sconfig` offers them.
//! * `wasi:keyvalue` 0.2.0-draft (`store`, `atomics`, `batch`, as wasmtime
//!   48 bundles them) — the app's buckets in the platform's durable
//!   key-value engine ([`crate::data`]). `open` finds only buckets the app
//!   has attached (`wpaas kv:create`); any other name is `no-such-store`.
//!   `open("")` (the one bucket `wasmtime serve -Skeyvalue` serves) opens the
//!   bucket named `default`.
//!
//! Every component process (web, worker, release phase, `run`) links these;
//! a component that does not import them is unaffected. Every failure of
//! the engine reaches the guest as the interface's `error`; nothing a guest
//! passes traps the host.

use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

use super::ProcessEnv;
use crate::data::{AppKv, KvError, DEFAULT_BUCKET};

mod bindings {
    // The WIT the builder ships to guest toolchains (copied from
    // wasmtime-wasi-keyvalue 48.0.8), so guests and host share one copy.
    wasmtime::component::bindgen!({
        path: "../builder/wit/deps/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};

/// Keys `list-keys` returns per page.
const KEYS_PER_PAGE: usize = 1000;

/// An open bucket, in the instance's resource table.
pub struct Bucket {
    name: String,
}

/// Per-instance state of the data interfaces.
pub(crate) struct GuestData {
    config: Arc<WasiConfigVariables>,
    kv: Option<AppKv>,
}

impl GuestData {
    /// The state an instance of a process with `env` starts with.
    pub fn new(env: &ProcessEnv) -> Self {
        Self {
            config: Arc::new(
                env.vars
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            ),
            kv: env.data.clone(),
        }
    }
}

/// Store state that carries a [`GuestData`] and a resource table.
pub(crate) trait HasGuestData {
    /// The data state with the instance's resource table.
    fn guest_view(&mut self) -> KvView<'_>;
    /// The instance's data state.
    fn guest_data(&mut self) -> &mut GuestData {
        self.guest_view().data
    }
}

/// The key-value interfaces' view of an instance's state.
pub(crate) struct KvView<'a> {
    /// The data state.
    pub data: &'a mut GuestData,
    /// Where open buckets live.
    pub table: &'a mut ResourceTable,
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// Adds `wasi:config/store` and `wasi:keyvalue` to `linker`.
pub(crate) fn add_to_linker<T: HasGuestData + Send + 'static>(
    linker: &mut Linker<T>,
) -> Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |state: &mut T| {
        WasiConfig::new(&state.guest_data().config)
    })
    .map_err(anyhow::Error::from)?;
    store::add_to_linker::<T, HasKv>(linker, T::guest_view).map_err(anyhow::Error::from)?;
    atomics::add_to_linker::<T, HasKv>(linker, T::guest_view).map_err(anyhow::Error::from)?;
    batch::add_to_linker::<T, HasKv>(linker, T::guest_view).map_err(anyhow::Error::from)?;
    Ok(())
}

fn guest_error(err: KvError) -> Error {
    match err {
        KvError::NoSuchBucket(_) => Error::NoSuchStore,
        other => Error::Other(other.to_string()),
    }
}

/// What a host function returns: a trap (`Err`) only for the host's own
/// faults (a bucket handle that is not one), the interface's error for
/// everything else.
type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl KvView<'_> {
    /// The app's data and the name of `bucket`.
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<(AppKv, String)> {
        let name = self.table.get(bucket)?.name.clone();
        let kv = self
            .data
            .kv
            .clone()
            .ok_or_else(|| wasmtime::format_err!("an open bucket without app data"))?;
        Ok((kv, name))
    }

    /// Runs `op` on the app's `bucket` off the async executor (writes wait
    /// for the disk). The future borrows nothing of the instance's state.
    fn run<T: Send + 'static>(
        &self,
        bucket: &Resource<Bucket>,
        op: impl FnOnce(&AppKv, &str) -> Result<T, KvError> + Send + 'static,
    ) -> impl std::future::Future<Output = Answer<T>> + Send + 'static {
        let target = self.bucket(bucket);
        async move {
            let (kv, name) = target?;
            let result = tokio::task::spawn_blocking(move || op(&kv, &name))
                .await
                .map_err(|e| wasmtime::format_err!("key-value operation panicked: {e}"))?;
            Ok(result.map_err(guest_error))
        }
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let name = if identifier.is_empty() {
            DEFAULT_BUCKET.to_string()
        } else {
            identifier
        };
        let Some(kv) = self.data.kv.clone() else {
            return Ok(Err(Error::NoSuchStore));
        };
        let lookup = name.clone();
        let found = tokio::task::spawn_blocking(move || kv.engine().has_bucket(kv.app(), &lookup))
            .await
            .map_err(|e| wasmtime::format_err!("key-value open panicked: {e}"))?;
        match found {
            Ok(true) => Ok(Ok(self.table.push(Bucket { name })?)),
            Ok(false) => Ok(Err(Error::NoSuchStore)),
            Err(err) => Ok(Err(guest_error(err))),
        }
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        self.run(&bucket, move |kv, b| kv.engine().get(kv.app(), b, &key))
            .await
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        self.run(&bucket, move |kv, b| {
            kv.engine().set(kv.app(), b, &key, &value)
        })
        .await
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        self.run(&bucket, move |kv, b| kv.engine().delete(kv.app(), b, &key))
            .await
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        self.run(&bucket, move |kv, b| kv.engine().exists(kv.app(), b, &key))
            .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<KeyResponse> {
        let page = self
            .run(&bucket, move |kv, b| {
                kv.engine().list_keys(kv.app(), b, cursor, KEYS_PER_PAGE)
            })
            .await?;
        Ok(page.map(|page| KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        self.run(&bucket, move |kv, b| {
            kv.engine().increment(kv.app(), b, &key, delta)
        })
        .await
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        self.run(&bucket, move |kv, b| {
            let values = kv.engine().get_many(kv.app(), b, &keys)?;
            Ok(keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        })
        .await
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        self.run(&bucket, move |kv, b| {
            kv.engine().set_many(kv.app(), b, &key_values)
        })
        .await
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        self.run(&bucket, move |kv, b| {
            kv.engine().delete_many(kv.app(), b, &keys)
        })
        .await
    }
}
