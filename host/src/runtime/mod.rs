//! Running WebAssembly: the engine, compiled-code cache, sandbox limits and
//! the two kinds of web process.
//!
//! Lifecycle (see DESIGN.md): [`Runtime::new`] once per host;
//! [`Runtime::load_web`] once per activation (read, compile or load from
//! cache, link); [`WebProcess::serve`] once per request (admit, instantiate,
//! call).

mod admission;
mod body;
mod buffer;
mod cache;
mod command;
mod component;
mod engine;
mod error;
mod failure_log;
mod guest_data;
pub mod limits;
mod outbound;
pub mod output;
mod sandbox;
mod wagi;
mod web;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use tokio::sync::Semaphore;

pub(crate) use admission::Admission;
pub(crate) use buffer::Budget;
pub use cache::CacheOutcome;
pub(crate) use cache::{CodeCache, Compiled};
pub use command::{Exit, Stdio, WasiCommand};
pub(crate) use component::HttpComponent;
pub(crate) use engine::WasmEngine;
pub use engine::{EngineConfig, MemoryInit};
pub(crate) use error::WebError;
pub use limits::Limits;
pub(crate) use wagi::{CgiContext, WagiModule};
use web::WebCode;
pub use web::{ReplicaStatus, WebProcess};
pub(crate) use web::{ServedBy, Uncounted};

/// Error type of response bodies leaving the host.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body type of every response the router sends.
pub(crate) type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A request body the runtime accepts: hyper's `Incoming` from the router,
/// or an in-process body (health checks).
pub(crate) trait RequestBody:
    http_body::Body<
        Data = Bytes,
        Error: Into<wasmtime_wasi_http::Error> + std::error::Error + Send + Sync + 'static,
    > + Send
    + Unpin
    + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<
            Data = Bytes,
            Error: Into<wasmtime_wasi_http::Error> + std::error::Error + Send + Sync + 'static,
        > + Send
        + Unpin
        + 'static
{
}

/// The engine plus its compiled-code cache, and what all apps share: the
/// instance pool (with each app's share of it) and the buffer budget.
pub struct Runtime {
    engine: WasmEngine,
    cache: CodeCache,
    /// One permit per instance the pool holds; web requests take one.
    pool: Arc<Semaphore>,
    /// Instances one app's web process may hold at once.
    app_instances: usize,
    budget: Budget,
}

impl Runtime {
    /// Builds the engine and opens the code cache in `cache_dir`.
    pub fn new(settings: &EngineConfig, cache_dir: impl Into<PathBuf>) -> Result<Self> {
        let engine = WasmEngine::new(settings)?;
        let cache = CodeCache::new(cache_dir, engine.engine())?;
        Ok(Self {
            engine,
            cache,
            pool: Arc::new(Semaphore::new(settings.max_instances as usize)),
            app_instances: settings.app_instances.max(1) as usize,
            budget: Budget::new(settings.buffer_budget),
        })
    }

    /// Bytes of the buffer budget in use now.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.in_use()
    }

    /// The compiled-code cache (its hit and miss counts feed `/metrics`).
    pub(crate) fn cache(&self) -> &CodeCache {
        &self.cache
    }

    /// Slots of the pooling instance allocator in use: core instances,
    /// component instances, memories, tables. `None` when the engine
    /// allocates on demand.
    pub(crate) fn pool_in_use(&self) -> Option<[(&'static str, u64); 4]> {
        let pool = self.engine.engine().pooling_allocator_metrics()?;
        Some([
            ("core_instances", pool.core_instances()),
            ("component_instances", pool.component_instances()),
            ("memories", pool.memories() as u64),
            ("tables", pool.tables() as u64),
        ])
    }

    /// Loads `path` as a web process: a `wasi:http` component or a WAGI
    /// module, compiled (or loaded from cache) and linked, with one replica
    /// ([`WebProcess::scaled`] makes more).
    pub fn load_web(
        &self,
        path: &Path,
        env: ProcessEnv,
        limits: Limits,
    ) -> Result<(WebProcess, CacheOutcome)> {
        let engine = self.engine.engine();
        let (compiled, outcome) = self.cache.load(engine, path)?;
        let code = match compiled {
            Compiled::Component(c) => {
                WebCode::Component(HttpComponent::new(engine, &c, limits.clone())?)
            }
            Compiled::Module(m) => WebCode::Wagi(WagiModule::new(
                engine,
                &m,
                limits.clone(),
                self.budget.clone(),
            )?),
        };
        // A share of its own until the routing table links it to the app's
        // earlier release (`WebProcess::share_with`).
        let shares = admission::Shares {
            app: Arc::new(Semaphore::new(self.app_instances)),
            pool: self.pool.clone(),
        };
        Ok((WebProcess::new(code, env, limits, 1, shares), outcome))
    }
}

impl Runtime {
    /// Loads `path` as a WASI command (a worker, the release phase, a
    /// one-off run), compiled (or loaded from cache) and linked.
    pub(crate) fn load_command(&self, path: &Path, limits: Limits) -> Result<WasiCommand> {
        let engine = self.engine.engine();
        match self.cache.load(engine, path)?.0 {
            Compiled::Component(c) => WasiCommand::from_component(engine, &c, limits),
            Compiled::Module(m) => WasiCommand::from_module(engine, &m, limits),
        }
    }
}

/// What a process sees of its environment: config vars and argv.
#[derive(Debug, Clone, Default)]
pub struct ProcessEnv {
    /// The app's config vars: environment variables, and what
    /// `wasi:config/store` serves.
    pub vars: Vec<(String, String)>,
    /// The process's name (`web.1`, `worker.2`): its `DYNO` environment
    /// variable, set by the platform as on Heroku, and not a config var
    /// (`wasi:config` does not show it). Set with [`ProcessEnv::for_process`].
    pub dyno: Option<String>,
    /// argv, starting with the program name.
    pub args: Vec<String>,
    /// Where its stdout/stderr lines go, by the process's `dyno` (`web`
    /// without one); `None`: the host's own.
    pub output: Option<std::sync::Arc<dyn output::ProcessLines>>,
    /// The app's files (its slug), mounted read-only at `/app` and as the
    /// working directory, so `static/index.html` and
    /// `/app/static/index.html` both open. Nothing else of the host's
    /// filesystem is visible.
    pub files: Option<PathBuf>,
    /// The app's key-value data (`wasi:keyvalue`); `None`: no bucket opens.
    pub data: Option<crate::data::AppKv>,
}

/// Where the app's files appear to the guest (Heroku's app directory).
pub const APP_DIR: &str = "/app";

impl ProcessEnv {
    /// This environment for the process `name` (`web.1`, `worker.2`): a
    /// config var named `DYNO` gives way to the platform's.
    pub fn for_process(mut self, name: &str) -> Self {
        self.vars.retain(|(k, _)| k != "DYNO");
        self.dyno = Some(name.to_string());
        self
    }

    /// A WASI context builder with this environment; stdout/stderr go to
    /// [`ProcessEnv::output`] line by line, else to the host's own.
    pub fn wasi_ctx(&self) -> wasmtime_wasi::WasiCtxBuilder {
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder.envs(&self.vars).args(&self.args);
        if let Some(dyno) = &self.dyno {
            builder.env("DYNO", dyno);
        }
        if let Some(files) = &self.files {
            for guest in [APP_DIR, "."] {
                if let Err(err) =
                    builder.preopened_dir(files, guest, wasmtime_wasi::FsPerms::ReadOnly)
                {
                    tracing::warn!("could not mount {} as {guest}: {err:#}", files.display());
                }
            }
        }
        match &self.output {
            Some(output) => {
                let sink = output.process(self.dyno.as_deref().unwrap_or("web"));
                builder
                    .stdout(output::LazyLines::new(sink.clone()))
                    .stderr(output::LazyLines::new(sink));
            }
            None => {
                builder.inherit_stdout().inherit_stderr();
            }
        }
        builder
    }
}
