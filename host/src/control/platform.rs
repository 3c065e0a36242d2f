//! The orchestrator: turns API calls into builds, releases and activations.
//!
//! Every change to what an app serves goes through [`Platform::release`]:
//! allocate `vN+1` (pending), activate it (load, health check, swap the
//! routing entry), then record it as succeeded — which moves the current
//! pointer — or as failed, leaving the old release serving.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

use super::config::ServerConfig;
use super::error::PlatformError;
use super::keyed_lock::{KeyGuard, KeyedLock};
use super::store::{App, Autoscale, ProcessLimits, Release, ReleaseDraft, Store, StoreError};
use super::supervisor::Supervisor;
use crate::home::Home;
use crate::logs::LogHub;
use crate::metrics::Metrics;
use crate::router::{AppRoute, RouteTable};
use crate::runtime::output::LineSink;
use crate::runtime::{
    CgiContext, Limits, ProcessEnv, ProcessOutput, ReplicaStatus, Runtime, Stdio, WasiCommand,
    WebProcess,
};

pub use super::log_sink::LogSink;

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
}

/// Keeps a slug from garbage collection while it is held.
pub struct SlugPin {
    digest: String,
    pins: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Drop for SlugPin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock().expect("slug pins");
        if let Some(n) = pins.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.digest);
            }
        }
    }
}

/// Slugs kept per app: those of its newest releases (and its current one).
/// A rollback to an older release fails with a message saying so.
pub const KEEP_RELEASE_SLUGS: usize = 10;

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
    ) -> Self {
        let hub = logs.clone();
        Self {
            store,
            runtime,
            table,
            router_port,
            supervisor: Supervisor::new(
                Arc::new(move |app: &str, process: &str, line: &str| {
                    hub.push(app, process, line);
                }),
                config.restart_backoff,
            ),
            logs,
            metrics: Arc::default(),
            autoscale_specs: Mutex::default(),
            app_locks: KeyedLock::default(),
            builds: Arc::new(super::builds::Builds::new(&config.builds)),
            config,
            slug_pins: Arc::default(),
            slug_gc: Arc::default(),
        }
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

    /// The build cache of `app`: `DIR/APP` under `--build-cache-dir`, else
    /// `WPAAS_HOME/cache/build/APP` (not created).
    pub fn build_cache_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        let own = self.store.build_cache_dir(app)?;
        Ok(match &self.config.build_cache_dir {
            Some(dir) => dir.join(app),
            None => own,
        })
    }

    /// Stores the packed slug in `file` (moved into the store) and pins it
    /// until the returned pin is dropped. Blocking: call it off the async
    /// workers.
    pub fn adopt_slug(&self, file: &Path) -> Result<(String, SlugPin)> {
        let _gc = self.slug_gc.lock().expect("slug gc");
        let digest = self.store.adopt_slug_file(file)?;
        let pin = self.pin(&digest);
        Ok((digest, pin))
    }

    /// Pins a stored slug; `None` if it is not stored (any more).
    pub fn pin_stored_slug(&self, digest: &str) -> Option<SlugPin> {
        let _gc = self.slug_gc.lock().expect("slug gc");
        self.store.slug_path(digest)?;
        Some(self.pin(digest))
    }

    fn pin(&self, digest: &str) -> SlugPin {
        *self
            .slug_pins
            .lock()
            .expect("slug pins")
            .entry(digest.to_string())
            .or_default() += 1;
        SlugPin {
            digest: digest.to_string(),
            pins: self.slug_pins.clone(),
        }
    }

    /// Deletes the slugs no app keeps (see [`KEEP_RELEASE_SLUGS`]), on a
    /// blocking thread; returns their digests.
    pub async fn collect_slugs(&self) -> Result<Vec<String>> {
        let (store, pins, gc) = (
            self.store.clone(),
            self.slug_pins.clone(),
            self.slug_gc.clone(),
        );
        let removed = tokio::task::spawn_blocking(move || {
            let _gc = gc.lock().expect("slug gc");
            let pinned = pins.lock().expect("slug pins").keys().cloned().collect();
            store.remove_unused_slugs(KEEP_RELEASE_SLUGS, &pinned)
        })
        .await
        .map_err(|e| anyhow!("slug collection panicked: {e}"))??;
        if !removed.is_empty() {
            tracing::info!("removed {} unused slugs", removed.len());
        }
        Ok(removed)
    }

    /// `apps:destroy`: stops the app and removes everything of it in
    /// WPAAS_HOME — records, domains, build logs, build cache, git
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
        let uploads = super::upload::uploads_dir(self.store.home());
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(uploads)).await;
        for app in self.store.apps()? {
            self.note_autoscale(&app);
            self.table.set_app(AppRoute {
                name: app.name.clone(),
                web: None,
            });
            for domain in &app.domains {
                // Added before such names were refused: never routed.
                if let Some(reason) = super::store::reserved_domain(domain) {
                    tracing::warn!(app = %app.name, "not routing domain {domain}: {reason}; remove it with `wpaas domains:remove {domain} -a {}`", app.name);
                    continue;
                }
                self.table.add_domain(domain, &app.name);
            }
            let Some(release) = self.store.current_release(&app.name)? else {
                continue;
            };
            // Its health was checked when it went live; do not let a slow
            // app keep the others from coming back.
            if let Err(err) = self.activate(&app, &release, None).await {
                tracing::error!(app = %app.name, "could not restore v{}: {err:#}", release.version);
            }
        }
        Ok(())
    }

    /// Registers a new, empty app with the router.
    pub fn app_created(&self, app: &App) {
        self.table.set_app(AppRoute {
            name: app.name.clone(),
            web: None,
        });
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
        self.table.remove_app(app);
        self.supervisor.stop_app(app);
        self.logs.remove(app);
        self.metrics.remove(app);
        self.autoscale_specs
            .lock()
            .expect("autoscale specs")
            .remove(app);
    }

    /// Creates a release from the current one changed by `change`, activates
    /// it and records the outcome. Caller holds the app's lock.
    pub async fn release(
        &self,
        app: &str,
        log: &LogSink,
        change: impl FnOnce(ReleaseDraft) -> ReleaseDraft,
        description: &str,
    ) -> Result<Release> {
        let mut change = Some(change);
        let mut first_draft = None;
        let pending = self.store.next_release(app, |base| {
            // The closure may be retried by the transaction; compute once.
            first_draft
                .get_or_insert_with(|| {
                    let draft = ReleaseDraft::inherit(base, description);
                    (change.take().expect("called once"))(draft)
                })
                .clone()
        })?;
        let app_record = self.store.app(app)?;
        let outcome = self.activate(&app_record, &pending, Some(log)).await;
        let release = self.store.finish_release(
            app,
            pending.version,
            outcome.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")),
        )?;
        let said = match &outcome {
            Ok(()) => format!("Release v{} created: {description}", pending.version),
            Err(err) => format!(
                "Release v{} failed: {description}: {err:#}",
                pending.version
            ),
        };
        self.logs.push(app, "api", &said);
        outcome.map_err(user_facing)?;
        if let Err(err) = self.collect_slugs().await {
            tracing::warn!(app, "could not remove unused slugs: {err:#}");
        }
        Ok(release)
    }

    /// Makes `release` what `app` runs. For a new release (`log` given):
    /// load its code, run its release phase, health-check its web process,
    /// then swap the routing entry and replace the long-running processes
    /// (new replicas start before old ones stop). On restore (`log` None)
    /// the release phase and health check, already passed, are skipped.
    async fn activate(&self, app: &App, release: &Release, log: Option<&LogSink>) -> Result<()> {
        let say = |line: String| {
            if let Some(log) = log {
                log.send(line);
            }
        };
        let web = match (release.command("web"), web_plan(app)) {
            (Some(command), Some((n, wake))) => {
                say(format!("-----> Loading web: {command}"));
                let (wasm, path, env) = self.process(release, "web")?;
                let runtime = self.runtime.clone();
                let limits = limits_for(app, "web");
                let (web, _) =
                    tokio::task::spawn_blocking(move || runtime.load_web(&path, env, limits))
                        .await
                        .map_err(|e| anyhow!("loading panicked: {e}"))?
                        .with_context(|| format!("could not load {wasm}"))?;
                web.set_replicas(n);
                web.set_wake_from_zero(wake);
                let (log, name) = (self.supervisor.process_log(), app.name.clone());
                web.set_events(Arc::new(move |replica: &str, line: &str| {
                    log(&name, replica, line)
                }));
                Some(Arc::new(web))
            }
            // Nothing to serve: `web` scaled to 0, absent, or not deployed yet.
            _ => None,
        };
        let mut workers = Vec::new();
        for (kind, command) in release
            .process_types
            .iter()
            .filter(|(k, _)| is_long_running(k))
        {
            let n = replicas(app, kind);
            if n > 0 {
                // Re-activating the running release (web scaled up from
                // zero, `ps:restart web`) leaves its workers running.
                let running = self.supervisor.command(&app.name, kind, release.version);
                let loaded = match running {
                    Some(command_running) if log.is_none() => {
                        (command_running, self.process(release, kind)?.2)
                    }
                    _ => {
                        say(format!("-----> Loading {kind}: {command}"));
                        let limits = limits_for(app, kind);
                        self.command(release, kind, limits).await?
                    }
                };
                workers.push((kind.clone(), loaded, n));
            }
        }
        if let (Some(log), Some(command)) = (log, release.command("release")) {
            let limits = limits_for(app, "release");
            self.release_phase(&app.name, release, command, limits, log)
                .await?;
        }
        if let (Some(web), Some(_)) = (&web, log) {
            say(format!("-----> Health check: GET {}", app.healthcheck.path));
            health_check(
                web,
                &app.name,
                &app.healthcheck.path,
                Duration::from_millis(app.healthcheck.timeout_ms),
            )
            .await?;
            say("       passed".into());
        }
        self.table.set_app(AppRoute {
            name: app.name.clone(),
            web,
        });
        let running: Vec<&str> = workers.iter().map(|(kind, ..)| kind.as_str()).collect();
        self.supervisor.retain(&app.name, &running);
        for (kind, (command, env), n) in workers {
            self.supervisor
                .set(&app.name, &kind, release.version, command, env, n as usize);
        }
        Ok(())
    }

    /// Runs the release's `release` process once; anything but exit 0
    /// fails the release. Its output goes to `log`.
    async fn release_phase(
        &self,
        app: &str,
        release: &Release,
        command: &str,
        limits: Limits,
        log: &LogSink,
    ) -> Result<()> {
        log.send(format!("-----> Running release command: {command}"));
        let (wasm, env) = self.command(release, "release", limits).await?;
        let out: LineSink = {
            let log = log.clone();
            Arc::new(move |line: &str| log.send(format!("       {line}")))
        };
        let stdio = Stdio {
            stdout: out.clone(),
            stderr: out,
        };
        let exit = wasm
            .run(
                &env,
                &stdio,
                Some(RELEASE_PHASE_TIMEOUT),
                std::future::pending(),
            )
            .await;
        if !exit.success() {
            bail!("release command failed ({exit}); {app} keeps its previous release");
        }
        log.send("       done");
        Ok(())
    }

    /// The slug path of a process type's module, and its environment.
    fn process(&self, release: &Release, kind: &str) -> Result<(String, PathBuf, ProcessEnv)> {
        let slug = release
            .slug
            .as_deref()
            .ok_or_else(|| anyhow!("release v{} has no slug", release.version))?;
        let slug_dir = self.unpacked_slug(slug)?;
        let argv = release
            .argv(kind)
            .ok_or_else(|| anyhow!("release v{} has no process type {kind:?}", release.version))?;
        let (wasm, args) = expand_argv(argv, &release.config)?;
        // Guest prints go to the app's log as the replica (DYNO) printing.
        let (hub, app) = (self.logs.clone(), release.app.clone());
        let env = ProcessEnv {
            vars: release.config.clone().into_iter().collect(),
            args,
            output: Some(ProcessOutput(Arc::new(move |process, line| {
                hub.push(&app, process, line)
            }))),
            files: Some(slug_dir.clone()),
        };
        let path = slug_dir.join(&wasm);
        Ok((wasm, path, env))
    }

    /// A process type loaded as a WASI command, with its environment.
    pub async fn command(
        &self,
        release: &Release,
        kind: &str,
        limits: Limits,
    ) -> Result<(Arc<WasiCommand>, ProcessEnv)> {
        let (wasm, path, env) = self.process(release, kind)?;
        let runtime = self.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load_command(&path, limits))
            .await
            .map_err(|e| anyhow!("loading panicked: {e}"))?
            .with_context(|| format!("could not load {wasm}"))?;
        Ok((Arc::new(loaded), env))
    }

    /// A one-off command (`wpaas run -- MODULE.wasm ARGS…`) from `app`'s
    /// current release, with its config plus `extra_env`.
    pub async fn one_off(
        &self,
        app: &str,
        argv: &[String],
        extra_env: &BTreeMap<String, String>,
    ) -> Result<(Arc<WasiCommand>, ProcessEnv)> {
        let Some(module) = argv.first() else {
            return Err(invalid(
                "no command given; e.g. `wpaas run -- app.wasm ARGS…`",
            ));
        };
        let relative = Path::new(module);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(invalid(format!(
                "{module:?} is not a path inside the slug; name a .wasm from `wpaas ps`"
            )));
        }
        let release = self
            .store
            .current_release(app)?
            .filter(|r| r.slug.is_some())
            .ok_or_else(|| conflict(format!("{app} has not been deployed yet; nothing to run")))?;
        let slug_dir = self.unpacked_slug(release.slug.as_deref().expect("filtered"))?;
        let path = slug_dir.join(relative);
        if !path.is_file() {
            return Err(invalid(format!(
                "{module} is not in {app}'s current release (v{})",
                release.version
            )));
        }
        let mut config = release.config.clone();
        config.extend(extra_env.clone());
        let env = ProcessEnv {
            vars: config.into_iter().collect(),
            args: argv.to_vec(),
            output: None,
            files: Some(slug_dir.clone()),
        };
        let runtime = self.runtime.clone();
        let limits = limits_for(&self.store.app(app)?, "run");
        let loaded = tokio::task::spawn_blocking(move || runtime.load_command(&path, limits))
            .await
            .map_err(|e| anyhow!("loading panicked: {e}"))?
            .with_context(|| format!("could not load {module}"))
            .map_err(user_facing)?;
        Ok((Arc::new(loaded), env))
    }

    /// Apps whose `web` is autoscaled and running: name, bounds, process.
    pub fn autoscaled(&self) -> Vec<(String, Autoscale, Arc<WebProcess>)> {
        let specs = self.autoscale_specs.lock().expect("autoscale specs");
        specs
            .iter()
            .filter_map(|(app, spec)| {
                let web = self.table.app(app)?.web.clone()?;
                Some((app.clone(), spec.clone(), web))
            })
            .collect()
    }

    /// The supervisor of long-running and one-off processes.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Sets the number of replicas of some process types (`ps:scale`) and
    /// applies it to `web` at once: more or fewer replicas of the running
    /// code, no new release. Types must exist in the current release.
    pub async fn scale(&self, app: &str, changes: &BTreeMap<String, u32>) -> Result<App> {
        let _guard = self.lock(app).await;
        let release = self.store.current_release(app)?;
        let types: Vec<&str> = release
            .iter()
            .flat_map(|r| r.process_types.iter().map(|(t, _)| t.as_str()))
            .collect();
        for (kind, &count) in changes {
            if !types.contains(&kind.as_str()) {
                if types.is_empty() {
                    return Err(conflict(format!(
                        "no process type {kind:?}: {app} has not been deployed yet"
                    )));
                }
                return Err(invalid(format!(
                    "no process type {kind:?} in {app}'s current release (it has: {})",
                    types.join(", ")
                )));
            }
            if kind == "release" {
                return Err(invalid(
                    "the release process runs once per release; it cannot be scaled",
                ));
            }
            if kind == "web" && self.store.app(app)?.autoscale.is_some() {
                return Err(conflict(
                    "web is autoscaled; run `wpaas ps:autoscale:disable web` first",
                ));
            }
            if count > MAX_REPLICAS {
                return Err(invalid(format!(
                    "{kind}={count} is too many; at most {MAX_REPLICAS} replicas per type"
                )));
            }
        }
        let record = self.store.update_app(app, |record| {
            for (kind, &count) in changes {
                record.formation.insert(kind.clone(), count);
            }
        })?;
        let Some(release) = release else {
            return Ok(record);
        };
        if changes.contains_key("web") {
            self.apply_web_scale(&record, &release).await?;
        }
        for kind in changes.keys().filter(|k| is_long_running(k)) {
            let n = replicas(&record, kind) as usize;
            if n == 0 {
                self.supervisor.stop(app, kind);
                continue;
            }
            let (command, env) = match self.supervisor.command(app, kind, release.version) {
                Some(running) => (running, self.process(&release, kind)?.2),
                None => self
                    .command(&release, kind, limits_for(&record, kind))
                    .await
                    .map_err(user_facing)?,
            };
            self.supervisor
                .set(app, kind, release.version, command, env, n);
        }
        Ok(record)
    }

    /// Resizes the running web process to the formation (or autoscale
    /// bounds), loading it when it was not running.
    async fn apply_web_scale(&self, record: &App, release: &Release) -> Result<()> {
        let running = self.table.app(&record.name).and_then(|r| r.web.clone());
        match (running, web_plan(record)) {
            (Some(web), Some((n, wake))) => {
                web.set_wake_from_zero(wake);
                if record.autoscale.is_none() || web.replica_count() < n {
                    web.set_replicas(n);
                }
                Ok(())
            }
            _ => self
                .activate(record, release, None)
                .await
                .map_err(user_facing),
        }
    }

    /// Turns autoscaling of `web` on (or changes it), or off with `None`.
    /// Off, the formation keeps the replicas running now.
    pub async fn autoscale(&self, app: &str, spec: Option<Autoscale>) -> Result<App> {
        let _guard = self.lock(app).await;
        let running = self.table.app(app).and_then(|r| r.web.clone());
        let now = running.as_ref().map_or(0, |web| web.replica_count()) as u32;
        let record = self.store.update_app(app, |record| {
            if spec.is_none() && record.autoscale.is_some() {
                record.formation.insert("web".into(), now.max(1));
            }
            record.autoscale = spec.clone();
        })?;
        self.note_autoscale(&record);
        if let Some(release) = self.store.current_release(app)? {
            if release.command("web").is_some() {
                self.apply_web_scale(&record, &release).await?;
            }
        }
        Ok(record)
    }

    fn note_autoscale(&self, app: &App) {
        let mut specs = self.autoscale_specs.lock().expect("autoscale specs");
        match &app.autoscale {
            Some(spec) => specs.insert(app.name.clone(), spec.clone()),
            None => specs.remove(&app.name),
        };
    }

    /// Sets limits for a process type; they apply from its next start.
    pub fn set_limits(&self, app: &str, kind: &str, limits: ProcessLimits) -> Result<App> {
        Ok(self.store.update_app(app, |record| {
            record.limits.insert(kind.to_string(), limits.clone());
        })?)
    }

    /// Restarts an app's processes (`ps:restart [TYPE]`): the current
    /// release's code is loaded again (from the compiled-code cache) with
    /// fresh replicas; requests running on the old ones finish there.
    pub async fn restart(&self, app: &str, kind: Option<&str>) -> Result<()> {
        let _guard = self.lock(app).await;
        let record = self.store.app(app)?;
        let Some(release) = self.store.current_release(app)? else {
            return Err(conflict(format!(
                "{app} has not been deployed yet; nothing to restart"
            )));
        };
        if let Some(kind) = kind {
            if release.command(kind).is_none() {
                return Err(invalid(format!(
                    "no process type {kind:?} in {app}'s current release"
                )));
            }
        }
        match kind {
            None | Some("web") => {
                if kind.is_none() {
                    // Fresh replicas everywhere: drop the running ones first.
                    self.supervisor.retain(app, &[]);
                }
                self.activate(&record, &release, None)
                    .await
                    .map_err(user_facing)?;
            }
            Some(kind) => {
                self.supervisor.stop(app, kind);
                let n = replicas(&record, kind) as usize;
                if n > 0 {
                    let (command, env) = self
                        .command(&release, kind, limits_for(&record, kind))
                        .await
                        .map_err(user_facing)?;
                    self.supervisor
                        .set(app, kind, release.version, command, env, n);
                }
            }
        }
        Ok(())
    }

    /// The running web replicas' live numbers, if `web` is running.
    pub fn web_status(&self, app: &str) -> Option<Vec<ReplicaStatus>> {
        let route = self.table.app(app)?;
        Some(route.web.as_ref()?.status())
    }

    /// The slug's files, unpacked once per digest (off the async workers).
    fn unpacked_slug(&self, digest: &str) -> Result<PathBuf> {
        super::store::off_worker(|| self.unpack_slug(digest))
    }

    fn unpack_slug(&self, digest: &str) -> Result<PathBuf> {
        let dir = self.store.home().unpacked_slug(digest);
        if dir.is_dir() {
            return Ok(dir);
        }
        let tarball = self.store.slug_path(digest).ok_or_else(|| {
            anyhow!("slug {digest} is no longer stored (wpaas keeps the slugs of each app's last {KEEP_RELEASE_SLUGS} releases); deploy the code again")
        })?;
        let file = std::fs::File::open(&tarball)?;
        // The server packed it: no entry cap beyond the slug's own size cap.
        let limits = wpaas_builder::archive::UnpackLimits {
            bytes: u64::MAX,
            entries: u64::MAX,
        };
        wpaas_builder::archive::unpack_limited(file, &dir, limits)
            .with_context(|| format!("could not unpack slug {digest}"))?;
        Ok(dir)
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

/// How long a release command may run.
pub const RELEASE_PHASE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Types the supervisor keeps running: all but `web` (served per request)
/// and `release` (run once per release).
pub fn is_long_running(kind: &str) -> bool {
    kind != "web" && kind != "release"
}

/// Most replicas one process type may have (each web replica has its own
/// concurrency slots; the engine's instance pool is shared).
pub const MAX_REPLICAS: u32 = 100;

/// How to run `web`: how many replicas to start with and whether a request
/// may wake it from zero; `None` when it is scaled to zero by hand.
fn web_plan(app: &App) -> Option<(usize, bool)> {
    match &app.autoscale {
        Some(spec) => Some((spec.min as usize, spec.min == 0)),
        None => Some(replicas(app, "web") as usize)
            .filter(|&n| n > 0)
            .map(|n| (n, false)),
    }
}

/// The limits `kind` runs under: the defaults, changed by `ps:limits`.
pub fn limits_for(app: &App, kind: &str) -> Limits {
    let mut limits = Limits::default();
    if let Some(set) = app.limits.get(kind) {
        if let Some(memory) = set.memory_bytes {
            limits.memory_bytes = memory as usize;
        }
        if let Some(timeout) = set.timeout_ms {
            limits.request_timeout = Duration::from_millis(timeout);
        }
        if let Some(concurrency) = set.concurrency {
            limits.max_concurrency = concurrency as usize;
        }
    }
    limits
}

/// Replicas `kind` should run: the formation's number, else Heroku's
/// default of one `web` and none of anything else.
pub fn replicas(app: &App, kind: &str) -> u32 {
    app.formation
        .get(kind)
        .copied()
        .unwrap_or(u32::from(kind == "web"))
}

/// A process type's argv (argv[0] is the module) with `$VAR`/`${VAR}`
/// words expanded from the config, and the module path.
pub fn expand_argv(
    argv: Vec<String>,
    config: &BTreeMap<String, String>,
) -> Result<(String, Vec<String>)> {
    let words: Vec<String> = argv.iter().map(|w| expand(w, config)).collect();
    let Some(wasm) = words.first() else {
        bail!("empty command");
    };
    Ok((wasm.clone(), words))
}

fn expand(word: &str, config: &BTreeMap<String, String>) -> String {
    let Some(rest) = word.strip_prefix('$') else {
        return word.to_string();
    };
    let name = rest.trim_start_matches('{').trim_end_matches('}');
    config.get(name).cloned().unwrap_or_default()
}

/// GET `path` on a fresh instance; any status below 500 within `timeout`
/// passes.
async fn health_check(web: &WebProcess, app: &str, path: &str, timeout: Duration) -> Result<()> {
    let request = hyper::Request::get(path)
        .header(http::header::HOST, format!("{app}.localhost"))
        .body(Empty::<Bytes>::new().map_err(|never| -> hyper::Error { match never {} }))
        .context("invalid health check path")?;
    let addr = ([127, 0, 0, 1], 0).into();
    let cgi = CgiContext {
        remote: addr,
        local: addr,
    };
    match tokio::time::timeout(timeout, web.serve(request, &cgi)).await {
        Err(_) => bail!("health check failed: GET {path} did not answer within {timeout:?}"),
        Ok(Err(err)) => bail!("health check failed: GET {path}: {err}"),
        Ok(Ok(response)) if response.status().is_server_error() => {
            bail!(
                "health check failed: GET {path} answered {}",
                response.status()
            )
        }
        Ok(Ok(_)) => Ok(()),
    }
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
