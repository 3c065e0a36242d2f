//! The orchestrator: [`Platform`] is the one way to change what an app
//! runs. It holds the server's shared state (store, runtime, route table,
//! supervisor, logs); what it does is split by idea:
//!
//! * `platform/activate.rs` — a release goes live: [`Platform::release`]
//!   allocates `vN+1` (pending), loads its code, runs its release phase,
//!   health-checks `web`, swaps the routing entry and records the outcome;
//!   a failure leaves the old release serving.
//! * `platform/formation.rs` — what runs and how much of it: process types
//!   loaded as commands, one-off runs, `ps:scale`, autoscale bounds,
//!   limits, restarts.
//! * `platform/follow.rs` — in a cluster: the leader places replicas on
//!   nodes, and every node runs what is placed on it.
//! * `platform/slugs.rs` — stored slugs: pinned while a release is made
//!   from them, collected beyond each app's newest releases, unpacked once.
//!
//! This file: the shared state and its accessors, the per-app lock, and
//! the app's lifecycle around them (restore at start, create, domains,
//! destroy).

mod activate;
mod follow;
mod formation;
mod replica;
mod slugs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};

use super::config::ServerConfig;
use super::error::PlatformError;
use super::keyed_lock::{KeyGuard, KeyedLock};
use super::store::{App, Autoscale, Store, StoreError};
use super::supervisor::Supervisor;
use crate::cluster::membership::Membership;
use crate::data::{AppKv, KvEngine};
use crate::home::Home;
use crate::logs::LogHub;
use crate::metrics::Metrics;
use crate::router::{AppRoute, RouteTable};
use crate::runtime::Runtime;

pub use super::log_sink::LogSink;
pub use activate::RELEASE_PHASE_TIMEOUT;
pub(crate) use formation::require_type;
pub use formation::{expand_argv, is_long_running, limits_for, replicas, MAX_REPLICAS};
pub(crate) use replica::ProcessName;
pub use slugs::{SlugPin, KEEP_RELEASE_SLUGS};

/// Shared state of a running `wpaas server`.
pub struct Platform {
    store: Arc<dyn Store>,
    runtime: Arc<Runtime>,
    table: Arc<RouteTable>,
    /// The router's address, for the URLs we print.
    router_port: u16,
    /// Workers and one-off runs.
    supervisor: Supervisor,
    /// Every app's log stream.
    logs: Arc<LogHub>,
    /// Request and build counters.
    metrics: Arc<Metrics>,
    /// In-memory copy of each autoscaled app's bounds, for the scaler's
    /// ticks (the store is the truth).
    autoscale_specs: Mutex<HashMap<String, Autoscale>>,
    /// Changes to one app run one at a time.
    app_locks: KeyedLock,
    /// The server's limits and settings.
    config: Arc<ServerConfig>,
    /// Build slots and the build sandbox.
    builds: Arc<super::builds::Builds>,
    /// Slugs about to be released (count of holders), which slug garbage
    /// collection leaves alone.
    slug_pins: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Held while slugs are collected, and while a slug is stored or looked
    /// up and pinned: a collection never sees a slug unpinned in between.
    slug_gc: Arc<Mutex<()>>,
    /// Every app's key-value data.
    kv: Arc<dyn KvEngine>,
    /// This node's record, and its cluster membership (`None`: a cluster
    /// of one). Set once by the server after it binds.
    node: std::sync::OnceLock<(wpaas_api::nodes::Node, Option<Arc<Membership>>)>,
    /// The API token every node shares (to fetch slugs from peers).
    cluster_token: std::sync::OnceLock<Arc<str>>,
    /// The release each app's local `web` runs.
    serving: Mutex<HashMap<String, u32>>,
    /// The cluster's placement as of the last round (empty outside one).
    placement: Mutex<crate::cluster::placement::Placement>,
}

/// `1.5 MiB`, `200 KiB`: a size for messages.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / (1 << 10) as f64),
        b => format!("{b} bytes"),
    }
}

impl Platform {
    /// A platform over an opened store and runtime, routing through
    /// `table`, with the limits and settings of `config`.
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Arc<Runtime>,
        table: Arc<RouteTable>,
        router_port: u16,
        logs: Arc<LogHub>,
        config: Arc<ServerConfig>,
        kv: Arc<dyn KvEngine>,
    ) -> Self {
        Self {
            store,
            runtime,
            table,
            router_port,
            supervisor: Supervisor::new(logs.clone(), config.restart_backoff),
            logs,
            metrics: Arc::default(),
            autoscale_specs: Mutex::default(),
            app_locks: KeyedLock::default(),
            builds: Arc::new(super::builds::Builds::new(&config.builds)),
            config,
            slug_pins: Arc::default(),
            slug_gc: Arc::default(),
            kv,
            node: std::sync::OnceLock::new(),
            cluster_token: std::sync::OnceLock::new(),
            serving: Mutex::default(),
            placement: Mutex::default(),
        }
    }

    /// Tells the platform which node it is and, in a cluster, its
    /// membership. Once; later calls are ignored.
    /// `token` is the API token every node of the cluster shares.
    pub fn set_node(
        &self,
        node: wpaas_api::nodes::Node,
        membership: Option<Arc<Membership>>,
        token: Arc<str>,
    ) {
        let _ = self.node.set((node, membership));
        let _ = self.cluster_token.set(token);
    }

    /// In a cluster, the node of each replica of `app`'s `kind` (replica
    /// order), as of the last round; `None` outside a cluster.
    pub fn placed(&self, app: &str, kind: &str) -> Option<Vec<String>> {
        if !self.clustered() {
            return None;
        }
        let placement = self.placement.lock().expect("placement");
        Some(
            placement
                .get(&(app.to_string(), kind.to_string()))
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Whether this server is a node of a cluster (`--cluster`).
    pub fn clustered(&self) -> bool {
        matches!(self.node.get(), Some((_, Some(_))))
    }

    /// This node's name (the host name outside a cluster).
    pub fn node_name(&self) -> Option<&str> {
        self.node.get().map(|(node, _)| node.name.as_str())
    }

    /// The cluster's live nodes (`wpaas nodes`): every node of the cluster,
    /// or this one alone (leading itself) without `--cluster`.
    pub async fn nodes(&self) -> Result<wpaas_api::nodes::Nodes, PlatformError> {
        let Some((me, membership)) = self.node.get() else {
            return Err(PlatformError::Unavailable(
                "the server is still starting".into(),
            ));
        };
        let Some(membership) = membership.clone() else {
            let node = wpaas_api::nodes::Node {
                leader: true,
                ..me.clone()
            };
            return Ok(wpaas_api::nodes::Nodes {
                this: me.name.clone(),
                clustered: false,
                nodes: vec![node],
            });
        };
        let nodes = tokio::task::spawn_blocking(move || membership.nodes())
            .await
            .map_err(|e| PlatformError::Internal(anyhow!("listing nodes panicked: {e}")))?
            .map_err(|e| PlatformError::Unavailable(e.to_string()))?;
        Ok(wpaas_api::nodes::Nodes {
            this: me.name.clone(),
            clustered: true,
            nodes,
        })
    }

    /// Every app's key-value data.
    pub fn kv(&self) -> &Arc<dyn KvEngine> {
        &self.kv
    }

    /// `app`'s key-value data, as its processes see it.
    pub(crate) fn app_kv(&self, app: &str) -> AppKv {
        AppKv::new(self.kv.clone(), app)
    }

    /// The server's limits and settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Build slots and the build sandbox.
    pub fn builds(&self) -> &super::builds::Builds {
        &self.builds
    }

    /// The most entries an upload may hold.
    pub fn max_upload_entries(&self) -> u64 {
        self.config.max_upload_entries
    }

    /// The most bytes of files a build may output.
    pub fn max_slug(&self) -> u64 {
        self.config.max_slug
    }

    /// Where buildpacks keep the toolchains they install, shared by every
    /// app: `DIR/.toolchains` beside the apps' caches when the build cache
    /// directory is given (no app is named with a dot), else
    /// `WPAAS_HOME/cache/toolchains`.
    pub fn toolchains_dir(&self) -> PathBuf {
        match &self.config.build_cache_dir {
            Some(dir) => dir.join(".toolchains"),
            None => self.store.home().toolchains(),
        }
    }

    /// The build cache of `app`: `DIR/APP` under `--build-cache-dir`, else
    /// `WPAAS_HOME/cache/build/APP` (not created).
    pub fn build_cache_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        let own = self.store.build_cache_dir(app)?;
        Ok(match &self.config.build_cache_dir {
            Some(dir) => dir.join(app),
            None => own,
        })
    }

    /// `apps:destroy`: stops the app and removes everything of it in
    /// WPAAS_HOME — records, domains, key-value data, build logs, build cache, git
    /// repository, log file, its slugs and the compiled code of its modules
    /// that no other app's kept slugs use. Caller holds the app's lock
    /// ([`Platform::destroy_app`] takes it).
    pub(super) async fn destroy(&self, app: &str) -> Result<()> {
        let slugs: BTreeSet<String> = self
            .store
            .releases(app)?
            .into_iter()
            .filter_map(|r| r.slug)
            .collect();
        self.store.destroy_app(app)?;
        self.app_destroyed(app);
        {
            let kv = self.kv.clone();
            let app = app.to_string();
            tokio::task::spawn_blocking(move || kv.delete_app(&app))
                .await
                .map_err(|e| anyhow!("{e}"))??;
        }
        // Its compiled code: modules in its unpacked slugs, less those in
        // the slugs other apps keep. (Unpacked slugs are the ones that ran.)
        let unpacked = self.store.home().unpacked_slugs();
        let kept = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.slugs_in_use(KEEP_RELEASE_SLUGS))
                .await
                .map_err(|e| anyhow!("{e}"))??
        };
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            let cache = runtime.cache();
            let modules = |digests: Vec<&String>| -> BTreeSet<PathBuf> {
                digests
                    .into_iter()
                    .flat_map(|d| module_files(&unpacked.join(d)))
                    .filter_map(|file| cache.path_for_file(&file))
                    .collect()
            };
            let others = modules(kept.iter().collect());
            let ours = modules(slugs.iter().filter(|d| !kept.contains(*d)).collect());
            let unused: Vec<PathBuf> = ours.difference(&others).cloned().collect();
            cache.remove(&unused);
        })
        .await
        .map_err(|e| anyhow!("{e}"))?;
        self.collect_slugs().await?;
        Ok(())
    }

    /// The most bytes a deploy upload or a git push may send.
    pub fn max_upload(&self) -> u64 {
        self.config.max_upload
    }

    /// The durable store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The durable store, to move into a blocking task.
    pub fn shared_store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Every app's log stream.
    pub fn logs(&self) -> &Arc<LogHub> {
        &self.logs
    }

    /// Request and build counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The wasm runtime (for its counters).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// `http://APP.localhost:PORT` (https when the router serves TLS).
    pub fn app_url(&self, app: &str) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{app}.localhost:{}", self.router_port)
    }

    /// Serialises changes to `app`.
    pub(crate) async fn lock(&self, app: &str) -> KeyGuard {
        self.app_locks.lock(app).await
    }

    /// Takes `app`'s lock if it is free now.
    pub fn try_lock(&self, app: &str) -> Option<KeyGuard> {
        self.app_locks.try_lock(app)
    }

    /// Brings every app back to its current release (server start).
    pub async fn restore(&self) -> Result<()> {
        // Uploads a crash interrupted.
        let uploads = self.store.home().uploads();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(uploads)).await;
        for app in self.store.apps()? {
            self.restore_app(&app).await?;
        }
        Ok(())
    }

    /// Brings one app back to its current release: routes its name and
    /// domains, and (outside a cluster) runs its release again.
    async fn restore_app(&self, app: &App) -> Result<()> {
        self.note_autoscale(app);
        self.app_created(app);
        for domain in &app.domains {
            // Added before such names were refused: never routed.
            if let Some(reason) = super::store::reserved_domain(domain) {
                tracing::warn!(app = %app.name, "not routing domain {domain}: {reason}; remove it with `wpaas domains:remove {domain} -a {}`", app.name);
                continue;
            }
            self.table.add_domain(domain, &app.name);
        }
        // A cluster node runs what placement gives it (follow.rs).
        if self.clustered() {
            return Ok(());
        }
        let Some(release) = self.store.current_release(&app.name)? else {
            return Ok(());
        };
        // Its health was checked when it went live; do not let a slow
        // app keep the others from coming back.
        if let Err(err) = self.activate(app, &release, None).await {
            tracing::error!(app = %app.name, "could not restore v{}: {err:#}", release.version);
        }
        Ok(())
    }

    /// After the store renamed `old` to `app`: the old name stops
    /// serving and running, the log moves, and the app comes back under
    /// its new name as a restart brings it back. Caller holds both names'
    /// locks.
    pub(super) async fn app_renamed(&self, old: &str, app: &App) -> Result<()> {
        self.stop_running(old);
        self.logs.rename(old, &app.name);
        for domain in &app.domains {
            self.table.remove_domain(domain);
        }
        self.restore_app(app).await
    }

    /// Registers a new, empty app with the router.
    pub fn app_created(&self, app: &App) {
        self.table.set_app(AppRoute {
            name: app.name.clone(),
            web: None,
        });
        self.maintenance_changed(app);
    }

    /// Makes the router answer for `app` while its record says it is in
    /// maintenance (at start, on `maintenance:on/off`, and on each node of
    /// a cluster as it follows the store).
    pub fn maintenance_changed(&self, app: &App) {
        self.table.set_maintenance(&app.name, app.maintenance);
    }

    /// Routes `domain` to `app` from now on.
    pub fn domain_added(&self, domain: &str, app: &str) {
        self.table.add_domain(domain, app);
    }

    /// Stops routing `domain`.
    pub fn domain_removed(&self, domain: &str) {
        self.table.remove_domain(domain);
    }

    /// Removes an app from the router and stops its processes.
    pub fn app_destroyed(&self, app: &str) {
        self.stop_running(app);
        self.logs.remove(app);
    }

    /// Takes `app` out of the router and forgets what runs of it (its
    /// processes, serving release, counters, autoscaling); its log stays.
    fn stop_running(&self, app: &str) {
        self.table.remove_app(app);
        self.serving.lock().expect("serving").remove(app);
        self.supervisor.stop_app(app);
        self.metrics.remove(app);
        self.autoscale_specs
            .lock()
            .expect("autoscale specs")
            .remove(app);
    }

    /// The supervisor of long-running and one-off processes.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }
}

/// A user's error (the request or the app), told to the client in full.
fn invalid(message: impl Into<String>) -> anyhow::Error {
    PlatformError::invalid(message).into()
}

/// A request that clashes with the app's state.
fn conflict(message: impl Into<String>) -> anyhow::Error {
    PlatformError::conflict(message).into()
}

/// An activation that failed (code that does not load, a failing release
/// command or health check) is the app's fault: the client is told why.
fn user_facing(err: anyhow::Error) -> anyhow::Error {
    PlatformError::user_facing(err).into()
}

/// The WebAssembly files of an unpacked slug (`.wasm`, `.wat`, anything
/// starting with the wasm magic is checked by the cache itself).
fn module_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => found.push(entry.path()),
                _ => {}
            }
        }
    }
    found
}

/// Where an app's source is unpacked for a build.
pub fn build_dir(home: &Home, build_id: &str) -> PathBuf {
    home.build_dir(build_id)
}
