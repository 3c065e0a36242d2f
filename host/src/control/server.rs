//! `wpaas server`: the router for every app plus the JSON API (and `git
//! push` under `/git/` on the API's port), over the durable store in
//! WPAAS_HOME.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use super::config::CLUSTER_PREFIX;
use super::git::GitHttp;
use super::platform::Platform;
use super::store::{EtcdStore, SledStore, Store};
use crate::cluster::membership::Membership;
use crate::cluster::this_node;
use crate::data::{EtcdKv, KvEngine, SledKv};
use crate::edge::{self, Edge};
use crate::etcd::Etcd;
use crate::home::Home;
use crate::logs::LogHub;
use crate::router::{self, Observer, RouteTable, Router, ServeOptions};
use crate::runtime::Runtime;

pub use super::config::{ServerConfig, TlsFiles};

/// Runs until `shutdown` resolves. `on_bound` gets the bound router and API
/// addresses (port 0 resolved) once both listen.
pub async fn run(
    home: &Path,
    config: ServerConfig,
    on_bound: impl FnOnce(SocketAddr, SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Everything that can be wrong with the files is found before binding.
    let tls = match &config.tls {
        Some(files) => Some((
            edge::tls::server_config(&files.cert, &files.key)?,
            edge::tls::leaf_sha256(&files.cert)?,
        )),
        None => None,
    };
    let open_files = edge::raise_open_files_limit();
    let limits = config.limits.clone().fit_open_files(open_files, 2);
    let home = Home::new(home);
    std::fs::create_dir_all(home.root())
        .with_context(|| format!("could not create {}", home.root().display()))?;
    let token: Arc<str> = super::token::ensure_token(&home)
        .context("could not create the API token")?
        .into();
    let (store, kv, cluster) = open_state(&home, &config)?;
    let token = match &cluster {
        Some((_, etcd)) => {
            let shared = crate::cluster::token::share_token(etcd, &token)
                .context("could not read the cluster's API token")?;
            if *shared != *token {
                super::token::replace_token(&home, &shared)
                    .context("could not save the cluster's API token")?;
            }
            shared.into()
        }
        None => token,
    };
    // Releases and builds a crash interrupted are recorded as failed.
    store.recover_interrupted()?;
    let runtime = Arc::new(Runtime::new(&config.engine, config.compiled_cache(&home))?);
    let table = Arc::new(RouteTable::new());

    let router_listener = edge::bind(config.listen).with_context(|| {
        format!(
            "could not listen on {} (router); try --listen 127.0.0.1:0",
            config.listen
        )
    })?;
    let api_listener = edge::bind(config.api).with_context(|| {
        format!(
            "could not listen on {} (API); try --api 127.0.0.1:0",
            config.api
        )
    })?;
    let router_addr = router_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    if tls.is_none() && !api_addr.ip().is_loopback() {
        tracing::warn!(
            "the API listens on {api_addr} without TLS: the token crosses the network in clear; use --tls-cert and --tls-key"
        );
    }

    let logs = Arc::new(
        LogHub::open(&home.logs(), config.log_lines)
            .context("could not open the logs directory")?,
    );
    let access_log = config.access_log;
    let capacity = config.capacity;
    let scaler_tick = config.scaler_tick;
    let platform = Arc::new(Platform::new(
        store,
        runtime,
        table.clone(),
        router_addr.port(),
        logs.clone(),
        Arc::new(config),
        kv,
    ));
    // This node, alone or registered with the cluster (which waits out a
    // record of the same name left by a node that died).
    let (name, membership) = match cluster {
        Some((name, etcd)) => {
            let node = this_node(&name, router_addr, api_addr, capacity);
            let tick = (etcd.lease_ttl() / 4).min(std::time::Duration::from_secs(1));
            let joined =
                tokio::task::spawn_blocking(move || Membership::join(etcd, node, tick)).await?;
            let membership = joined.context("could not join the cluster")?;
            (name, Some(Arc::new(membership)))
        }
        None => (non_empty_or_local(super::config::host_name()), None),
    };
    let follow_tick = membership
        .as_ref()
        .map(|m| (m.etcd().lease_ttl() / 8).min(std::time::Duration::from_millis(500)));
    platform.set_node(
        this_node(&name, router_addr, api_addr, capacity),
        membership,
        token.clone(),
    );
    platform.restore().await?;
    // A cluster's replica counts are the placement's: its scaler shares
    // each node's load and the leader sizes apps by the sum.
    let sampler = tokio::spawn({
        let platform = platform.clone();
        async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                platform.sample_replicas();
            }
        }
    });
    let mut background = match follow_tick {
        Some(tick) => vec![
            tokio::spawn(follow(platform.clone(), tick)),
            tokio::spawn(super::scaler::run_cluster(platform.clone(), tick)),
        ],
        None => vec![tokio::spawn(super::scaler::run(
            platform.clone(),
            scaler_tick,
        ))],
    };
    on_bound(router_addr, api_addr);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut git = GitHttp::new(api_addr)?;
    if let Some((_, cert_sha256)) = &tls {
        git = git.with_tls(cert_sha256.clone());
    }
    let git = Arc::new(git);
    let tls_config = tls.map(|(config, _)| config);
    let api = tokio::spawn(serve_api(
        api_listener,
        Edge {
            limits: limits.clone(),
            tls: tls_config.clone(),
            ..Edge::new("API")
        },
        platform.clone(),
        git,
        token,
        tls_config.is_some(),
        stop_rx.clone(),
    ));
    let mut router_stop = stop_rx;
    let mut observers: Vec<Arc<dyn Observer>> = vec![platform.metrics().clone()];
    if access_log {
        observers.push(logs);
    }
    let mut front = Router::new(table).with_observer(Arc::new(observers));
    if follow_tick.is_some() {
        front = front.in_cluster(&name);
    }
    router::serve(
        router_listener,
        Arc::new(front),
        async move {
            let _ = router_stop.wait_for(|stop| *stop).await;
        },
        ServeOptions {
            limits,
            tls: tls_config,
            ..ServeOptions::default()
        },
    )
    .await?;
    if let Ok(Err(err)) = api.await {
        tracing::warn!("the API stopped: {err}");
    }
    background.push(sampler);
    for task in &background {
        task.abort();
    }
    platform.store().flush()?;
    Ok(())
}

/// A cluster node follows the cluster: a round every `tick`, and one soon
/// after any change in the store (another node's deploy, a `ps:scale`).
async fn follow(platform: Arc<Platform>, tick: std::time::Duration) {
    let mut changes = platform.store().watch();
    loop {
        if let Err(err) = platform.follow_cluster().await {
            tracing::warn!("could not follow the cluster: {err:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            change = changes.recv() => {
                if matches!(change, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    tokio::time::sleep(tick).await;
                }
                // Changes come in bursts (a release is several writes).
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                while changes.try_recv().is_ok() {}
            }
        }
    }
}

/// Serves the JSON API and, under `/git/`, git's smart HTTP protocol.
async fn serve_api(
    listener: TcpListener,
    edge: Edge,
    platform: Arc<Platform>,
    git: Arc<GitHttp>,
    token: Arc<str>,
    secure: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let auth = Arc::new(super::api::auth::Auth::new(token.clone(), secure));
    let api = super::api::router(platform.clone(), auth.clone());
    let dashboard = super::dashboard::router(auth);
    edge::serve(
        listener,
        edge,
        move |req: hyper::Request<_>, _conn| {
            let platform = platform.clone();
            let git = git.clone();
            let token = token.clone();
            let api = api.clone();
            let dashboard = dashboard.clone();
            async move {
                if GitHttp::handles(req.uri().path()) {
                    git.handle(&platform, &token, req).await
                } else if super::dashboard::handles(req.uri().path()) {
                    super::api::serve(dashboard, req).await
                } else {
                    super::api::serve(api, req).await
                }
            }
        },
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        },
    )
    .await
}

/// A single server's name for `wpaas nodes`: the host name, or `local`.
fn non_empty_or_local(name: String) -> String {
    if name.is_empty() {
        "local".into()
    } else {
        name
    }
}

/// The records and the app data: in `WPAAS_HOME` (sled), or in the
/// cluster's etcd with `--cluster`.
/// In a cluster, also the node's name and its etcd connection.
fn open_state(home: &Home, config: &ServerConfig) -> Result<OpenState> {
    let Some(cluster) = &config.cluster else {
        let store = SledStore::open(home).context("could not open the store")?;
        let kv = SledKv::open(&home.kv(), config.kv_quotas)
            .with_context(|| format!("could not open {}", home.kv().display()))?;
        return Ok((Arc::new(store), Arc::new(kv), None));
    };
    let node = cluster.node_name().map_err(anyhow::Error::msg)?;
    let etcd = Etcd::connect(&cluster.endpoints, CLUSTER_PREFIX, cluster.lease_ttl)
        .context("could not join the cluster")?;
    tracing::info!("node {node} of the cluster at {}", etcd.endpoints());
    let store =
        EtcdStore::open(home, etcd.clone()).context("could not open the cluster's store")?;
    Ok((
        Arc::new(store),
        Arc::new(EtcdKv::open(etcd.clone(), config.kv_quotas)),
        Some((node, etcd)),
    ))
}

/// The store, the app data and, in a cluster, the node's name and etcd.
type OpenState = (Arc<dyn Store>, Arc<dyn KvEngine>, Option<(String, Etcd)>);
