//! Running WebAssembly: the engine, compiled-code cache, sandbox limits and
//! the two kinds of web process.
//!
//! Lifecycle (see DESIGN.md): [`Runtime::new`] once per host;
//! [`Runtime::load_web`] once per activation (read, compile or load from
//! cache, link); [`WebProcess::serve`] once per request (admit, instantiate,
//! call).

mod admission;
mod cache;
mod component;
mod engine;
mod error;
pub mod limits;
mod sandbox;
mod wagi;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;

pub use admission::{Admission, Rejected};
pub use cache::{CacheOutcome, CodeCache, Compiled};
pub use component::HttpComponent;
pub use engine::{EngineConfig, WasmEngine, EPOCH_TICK};
pub use error::WebError;
pub use limits::Limits;
pub use wagi::{CgiContext, WagiModule};

/// Error type of response bodies leaving the host.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body type of every response the router sends.
pub type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A request body the runtime accepts: hyper's `Incoming` from the router,
/// or an in-process body (health checks).
pub trait RequestBody:
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

/// The engine plus its compiled-code cache.
pub struct Runtime {
    engine: WasmEngine,
    cache: CodeCache,
}

impl Runtime {
    /// Builds the engine and opens the code cache in `cache_dir`.
    pub fn new(settings: &EngineConfig, cache_dir: impl Into<PathBuf>) -> Result<Self> {
        let engine = WasmEngine::new(settings)?;
        let cache = CodeCache::new(cache_dir, engine.engine())?;
        Ok(Self { engine, cache })
    }

    /// The compiled-code cache (its hit/miss counters are public).
    pub fn cache(&self) -> &CodeCache {
        &self.cache
    }

    /// Loads `path` as a web process: a `wasi:http` component or a WAGI
    /// module, compiled (or loaded from cache) and linked.
    pub fn load_web(
        &self,
        path: &Path,
        env: ProcessEnv,
        limits: Limits,
    ) -> Result<(WebProcess, CacheOutcome)> {
        let engine = self.engine.engine();
        let (compiled, outcome) = self.cache.load(engine, path)?;
        let env = Arc::new(env);
        let kind = match compiled {
            Compiled::Component(c) => {
                WebKind::Component(HttpComponent::new(engine, &c, env, limits.clone())?)
            }
            Compiled::Module(m) => WebKind::Wagi(WagiModule::new(engine, &m, env, limits.clone())?),
        };
        let admission = Admission::new(limits.max_concurrency, limits.max_queue);
        Ok((
            WebProcess {
                kind,
                admission,
                limits,
            },
            outcome,
        ))
    }
}

/// What a process sees of its environment: config vars and argv.
#[derive(Debug, Clone, Default)]
pub struct ProcessEnv {
    /// Environment variables (the app's config).
    pub vars: Vec<(String, String)>,
    /// argv, starting with the program name.
    pub args: Vec<String>,
}

impl ProcessEnv {
    /// A WASI context builder with this environment and the host's
    /// stdout/stderr (guest prints reach the host's log).
    pub fn wasi_ctx(&self) -> wasmtime_wasi::WasiCtxBuilder {
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder
            .envs(&self.vars)
            .args(&self.args)
            .inherit_stdout()
            .inherit_stderr();
        builder
    }
}

enum WebKind {
    Component(HttpComponent),
    Wagi(WagiModule),
}

/// A loaded web process: its code, its capacity and its limits.
pub struct WebProcess {
    kind: WebKind,
    admission: Admission,
    limits: Limits,
}

impl WebProcess {
    /// `"component"` or `"wagi"`, for display.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            WebKind::Component(_) => "wasi:http component",
            WebKind::Wagi(_) => "WAGI module",
        }
    }

    /// The limits this process runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.admission.in_flight()
    }

    /// Serves one request: waits for capacity, then runs a fresh instance.
    pub async fn serve<B: RequestBody>(
        &self,
        req: hyper::Request<B>,
        cgi: &CgiContext,
    ) -> Result<hyper::Response<BoxBody>, WebError> {
        let permit = self.admission.admit(self.limits.request_timeout).await?;
        match &self.kind {
            WebKind::Component(c) => c.serve(req, permit).await,
            WebKind::Wagi(w) => w.serve(req, cgi, permit).await,
        }
    }
}
