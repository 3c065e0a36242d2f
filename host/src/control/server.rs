//! `wpaas server`: the router for every app plus the JSON API (and `git
//! push` under `/git/` on the API's port), over the durable store in
//! WPAAS_HOME.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::git::GitHttp;
use super::platform::Platform;
use super::store::Store;
use crate::logs::LogHub;
use crate::router::{self, Observer, RouteTable, Router, ServeOptions};
use crate::runtime::{EngineConfig, Runtime};

/// Addresses to bind.
pub struct ServerConfig {
    /// The router (apps).
    pub listen: SocketAddr,
    /// The API.
    pub api: SocketAddr,
    /// Log lines kept per app.
    pub log_lines: usize,
    /// Whether the router writes an `app[router]` line per request.
    pub access_log: bool,
    /// The most bytes a deploy upload or a git push may send.
    pub max_upload: u64,
    /// Concurrent builds and the build sandbox.
    pub builds: super::builds::BuildConfig,
    /// The most entries (files, directories, links) of one deploy upload.
    pub max_upload_entries: u64,
    /// The most bytes of files one build may output (its slug).
    pub max_slug: u64,
}

/// Runs until `shutdown` resolves. `on_bound` gets the bound router and API
/// addresses (port 0 resolved) once both listen.
pub async fn run(
    home: &Path,
    config: ServerConfig,
    on_bound: impl FnOnce(SocketAddr, SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    std::fs::create_dir_all(home)
        .with_context(|| format!("could not create {}", home.display()))?;
    let token: Arc<str> = super::token::ensure_token(home)
        .context("could not create the API token")?
        .into();
    let store = Store::open(home).context("could not open the store")?;
    // Releases and builds a crash interrupted are recorded as failed.
    store.recover_interrupted()?;
    let runtime = Arc::new(Runtime::new(
        &EngineConfig::default(),
        home.join("cache/compiled"),
    )?);
    let table = Arc::new(RouteTable::new());

    let router_listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "could not listen on {} (router); try --listen 127.0.0.1:0",
            config.listen
        )
    })?;
    let api_listener = TcpListener::bind(config.api).await.with_context(|| {
        format!(
            "could not listen on {} (API); try --api 127.0.0.1:0",
            config.api
        )
    })?;
    let router_addr = router_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let logs = Arc::new(
        LogHub::open(&home.join("logs"), config.log_lines)
            .context("could not open the logs directory")?,
    );
    let platform = Arc::new(
        Platform::new(
            store,
            runtime,
            table.clone(),
            router_addr.port(),
            logs.clone(),
        )
        .with_max_upload(config.max_upload)
        .with_builds(super::builds::Builds::new(&config.builds))
        .with_max_upload_entries(config.max_upload_entries)
        .with_max_slug(config.max_slug),
    );
    platform.restore().await?;
    let scaler = tokio::spawn(super::scaler::run(platform.clone()));
    on_bound(router_addr, api_addr);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let git = Arc::new(GitHttp::new(api_addr)?);
    let api = tokio::spawn(serve_api(
        api_listener,
        platform.clone(),
        git,
        token,
        stop_rx.clone(),
    ));
    let mut router_stop = stop_rx;
    let mut observers: Vec<Arc<dyn Observer>> = vec![platform.metrics().clone()];
    if config.access_log {
        observers.push(logs);
    }
    router::serve(
        router_listener,
        Arc::new(Router::new(table).with_observer(Arc::new(observers))),
        async move {
            let _ = router_stop.wait_for(|stop| *stop).await;
        },
        ServeOptions::default(),
    )
    .await?;
    let _ = api.await;
    scaler.abort();
    platform.store().flush()?;
    Ok(())
}

/// Serves the JSON API and, under `/git/`, git's smart HTTP protocol.
async fn serve_api(
    listener: TcpListener,
    platform: Arc<Platform>,
    git: Arc<GitHttp>,
    token: Arc<str>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!("API accept failed: {err}");
                    continue;
                }
            },
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let platform = platform.clone();
        let git = git.clone();
        let token = token.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
            let platform = platform.clone();
            let git = git.clone();
            let token = token.clone();
            async move {
                let response = if GitHttp::handles(req.uri().path()) {
                    git.handle(&platform, &token, req).await
                } else {
                    super::api::handle(platform, token, req).await
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
