//! The formation: which process types run, how many replicas of each and
//! under which limits. Loads process types as commands (and one-off runs
//! from the current release), applies `ps:scale`, `ps:autoscale`,
//! `ps:limits` and `ps:restart` to what is running, without a new release.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::replica::ProcessName;
use super::{conflict, invalid, user_facing, Platform};
use crate::control::store::{App, Autoscale, ProcessLimits, Release};
use crate::router::AppRoute;
use crate::runtime::{Limits, ProcessEnv, ReplicaStatus, WasiCommand, WebProcess};

/// `kind` must be one of `release`'s process types: a change naming another
/// (`ps:scale wbe=2`, `ps:limits wbe`) is a typo, answered with the types
/// there are.
pub(crate) fn require_type(app: &str, release: &Release, kind: &str) -> Result<()> {
    if release.command(kind).is_some() {
        return Ok(());
    }
    let types: Vec<&str> = release
        .process_types
        .iter()
        .map(|(t, _)| t.as_str())
        .collect();
    Err(invalid(format!(
        "no process type {kind:?} in {app}'s current release (its types: {})",
        types.join(", ")
    )))
}

impl Platform {
    /// The slug path of a process type's module, and its environment.
    pub(super) fn process(
        &self,
        release: &Release,
        kind: &str,
    ) -> Result<(String, PathBuf, ProcessEnv)> {
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
        let env = ProcessEnv {
            vars: release.config.clone().into_iter().collect(),
            dyno: None,
            args,
            output: Some(Arc::new(self.logs.app_log(&release.app, kind))),
            files: Some(slug_dir.clone()),
            data: Some(self.app_kv(&release.app)),
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
        let slug = release.slug.as_deref().expect("filtered");
        self.ensure_slug(slug).await.map_err(user_facing)?;
        let slug_dir = self.unpacked_slug(slug)?;
        let path = slug_dir.join(relative);
        if !path.is_file() {
            let modules = wasm_modules(&slug_dir);
            return Err(invalid(format!(
                "{module} is not in {app}'s current release (v{}); its modules: {}",
                release.version,
                if modules.is_empty() {
                    "none".to_string()
                } else {
                    modules.join(", ")
                }
            )));
        }
        let mut config = release.config.clone();
        config.extend(extra_env.clone());
        let env = ProcessEnv {
            vars: config.into_iter().collect(),
            dyno: None,
            args: argv.to_vec(),
            output: None,
            files: Some(slug_dir.clone()),
            data: Some(self.app_kv(app)),
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

    /// Sets the number of replicas of some process types (`ps:scale`) and
    /// applies it to `web` at once: more or fewer replicas of the running
    /// code, no new release. Types must exist in the current release.
    pub async fn scale(&self, app: &str, changes: &BTreeMap<String, u32>) -> Result<App> {
        let _guard = self.lock(app).await;
        let release = self.store.current_release(app)?;
        for (kind, &count) in changes {
            let Some(release) = &release else {
                return Err(conflict(format!(
                    "no process type {kind:?}: {app} has not been deployed yet"
                )));
            };
            require_type(app, release, kind)?;
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
        if self.clustered() {
            // The leader places the new formation; each node follows.
            return Ok(record);
        }
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
        let now = match self.placed(app, "web") {
            Some(nodes) => nodes.len(),
            None => running.as_ref().map_or(0, |web| web.replica_count()),
        } as u32;
        let record = self.store.update_app(app, |record| {
            if spec.is_none() && record.autoscale.is_some() {
                record.formation.insert("web".into(), now.max(1));
            }
            record.autoscale = spec.clone();
        })?;
        self.note_autoscale(&record);
        if self.clustered() {
            return Ok(record);
        }
        if let Some(release) = self.store.current_release(app)? {
            if release.command("web").is_some() {
                self.apply_web_scale(&record, &release).await?;
            }
        }
        Ok(record)
    }

    /// Every autoscaled app's bounds.
    pub fn autoscale_specs(&self) -> std::collections::HashMap<String, Autoscale> {
        self.autoscale_specs
            .lock()
            .expect("autoscale specs")
            .clone()
    }

    pub(super) fn note_autoscale(&self, app: &App) {
        let mut specs = self.autoscale_specs.lock().expect("autoscale specs");
        match &app.autoscale {
            Some(spec) => specs.insert(app.name.clone(), spec.clone()),
            None => specs.remove(&app.name),
        };
    }

    /// Sets limits for a process type; they apply from its next start.
    /// Sets (`Some`) or clears (`None`: the defaults) a type's limits.
    pub fn set_limits(&self, app: &str, kind: &str, limits: Option<ProcessLimits>) -> Result<App> {
        Ok(self.store.update_app(app, |record| match &limits {
            Some(limits) => {
                record.limits.insert(kind.to_string(), limits.clone());
            }
            None => {
                record.limits.remove(kind);
            }
        })?)
    }

    /// Restarts an app's processes (`ps:restart [TYPE | TYPE.N]`): the
    /// current release's code is loaded again (from the compiled-code
    /// cache) with fresh replicas; requests running on the old ones finish
    /// there. One replica named (`web.2`): only it starts afresh.
    pub async fn restart(&self, app: &str, name: Option<&str>) -> Result<()> {
        let _guard = self.lock(app).await;
        let record = self.store.app(app)?;
        let Some(release) = self.store.current_release(app)? else {
            return Err(conflict(format!(
                "{app} has not been deployed yet; nothing to restart"
            )));
        };
        let name = name.map(ProcessName::parse).transpose()?;
        if let Some(ProcessName { kind, .. }) = name {
            require_type(app, &release, kind)?;
        }
        if let Some(ProcessName {
            kind,
            number: Some(n),
        }) = name
        {
            return self.restart_replica(app, kind, n);
        }
        let kind = name.map(|name| name.kind);
        if self.clustered() {
            // This node's replicas stop; its next round starts them again
            // from the current release.
            if kind.is_none_or(|k| k == "web") {
                self.serving.lock().expect("serving").remove(app);
                self.table.set_app(AppRoute {
                    name: app.to_string(),
                    web: None,
                });
            }
            match kind {
                None => self.supervisor.retain(app, &[]),
                Some(kind) => self.supervisor.stop(app, kind),
            }
            return Ok(());
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

    /// `app`'s web replicas running: the cluster's in a cluster, else
    /// this server's.
    pub fn web_replicas(&self, app: &str) -> u32 {
        let replicas = match self.placed(app, "web") {
            Some(nodes) => nodes.len(),
            None => self
                .table
                .app(app)
                .and_then(|route| route.web.clone())
                .map_or(0, |web| web.replica_count()),
        };
        replicas as u32
    }

    /// Notes each app's web replicas in its metrics, for the dashboard's
    /// replicas plot.
    pub fn sample_replicas(&self) {
        for name in self.table.app_names() {
            self.metrics.note_replicas(&name, self.web_replicas(&name));
        }
    }

    /// The running web replicas' live numbers, if `web` is running.
    pub fn web_status(&self, app: &str) -> Option<Vec<ReplicaStatus>> {
        let route = self.table.app(app)?;
        Some(route.web.as_ref()?.status())
    }
}

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
pub(super) fn web_plan(app: &App) -> Option<(usize, bool)> {
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

/// The `.wasm` files of an unpacked slug, as paths inside it, sorted: what
/// `wpaas run` can run.
fn wasm_modules(slug_dir: &Path) -> Vec<String> {
    let mut modules: Vec<String> = super::module_files(slug_dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .filter_map(|path| {
            let inside = path.strip_prefix(slug_dir).ok()?;
            Some(inside.display().to_string())
        })
        .collect();
    modules.sort();
    modules
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
