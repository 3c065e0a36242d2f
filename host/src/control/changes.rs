//! Every change an API request makes to an app, as [`Platform`] methods.
//!
//! The API only reads requests and writes answers; what a change does —
//! checks, the app's lock, the release it makes, the line it leaves in the
//! app's log (source `api`) — is here, so that the API, the git hook and
//! tests cannot do it differently. Changes that make a release or destroy
//! take the app's lock themselves; scale, autoscale and restart take it in
//! the methods they call.

use wpaas_api::apps::config::ConfigChanges;
use wpaas_api::apps::HealthcheckUpdate;
use wpaas_api::ps::{AutoscaleRequest, Formation, LimitsRequest};
use wpaas_api::ErrorCode;

use super::error::{PlatformError, PlatformResult};
use super::platform::{
    require_type, LogSink, Platform, ProcessName, KEEP_RELEASE_SLUGS, MAX_REPLICAS,
};
use super::store::{self, App, Autoscale, Healthcheck, ProcessLimits, Release, ReleaseStatus};

impl Platform {
    /// `apps:create`: records the app and routes its name (to nothing yet).
    pub fn create_app(&self, name: &str) -> PlatformResult<App> {
        let app = self.store().create_app(name)?;
        self.app_created(&app);
        self.logs().push(&app.name, "api", "App created");
        Ok(app)
    }

    /// `apps:destroy`: under the app's lock (a deploy in progress finishes
    /// first), stops it and removes everything of it.
    pub async fn destroy_app(&self, app: &str) -> PlatformResult<()> {
        let _guard = self.lock(app).await;
        self.destroy(app).await?;
        Ok(())
    }

    /// `apps:rename`: the app, with its releases, builds, config,
    /// formation, domains, key-value data, log and git repository, goes by
    /// `new` from now on; the old name is free. Under both names' locks
    /// (a deploy in progress finishes first), its processes stop and start
    /// again under the new name, as after a restart (no release phase, no
    /// health check: the release is the one that served).
    pub async fn rename_app(&self, old: &str, new: &str) -> PlatformResult<App> {
        if self.clustered() {
            return Err(PlatformError::conflict(
                "renaming an app is not supported in a cluster yet; create a new app and deploy to it",
            ));
        }
        store::validate_app_name(new)?;
        if old == new {
            return Err(PlatformError::invalid(format!(
                "{old} is already called {new}"
            )));
        }
        // Locked in name order, so two renames between the same names
        // cannot each hold one lock and wait for the other.
        let (first, second) = if old < new { (old, new) } else { (new, old) };
        let _first = self.lock(first).await;
        let _second = self.lock(second).await;
        // The store is the authority: once it renamed the app, the rest
        // follows it, and the app runs again under its new name even if
        // its data could not move (said, and kept under the old name).
        let app = self.store().rename_app(old, new)?;
        let data = {
            let kv = self.kv().clone();
            let (old, new) = (old.to_string(), new.to_string());
            tokio::task::spawn_blocking(move || kv.rename_app(&old, &new)).await?
        };
        self.app_renamed(old, &app).await?;
        if let Err(err) = data {
            tracing::error!(app = new, "the key-value data of {old} did not move: {err}");
            return Err(PlatformError::internal(anyhow::anyhow!(
                "{old} is now {new}, but its key-value data did not move: {err}"
            )));
        }
        self.logs()
            .push(new, "api", &format!("Renamed from {old} to {new}"));
        Ok(app)
    }

    /// `config:set` / `config:unset`: a new release with the config changed
    /// (`Some` sets, `None` unsets), activated like any other.
    pub async fn set_config(&self, app: &str, changes: ConfigChanges) -> PlatformResult<Release> {
        if changes.is_empty() {
            return Err(PlatformError::malformed("no config vars given"));
        }
        let _guard = self.lock(app).await;
        self.store().app(app)?;
        let changes = without_absent_unsets(changes, &self.store().config(app)?, app)?;
        let description = config_description(&changes);
        let release = self
            .release(
                app,
                &self.release_log(app),
                |mut draft| {
                    for (key, value) in changes {
                        match value {
                            Some(value) => draft.config.insert(key, value),
                            None => draft.config.remove(&key),
                        };
                    }
                    draft
                },
                &description,
            )
            .await?;
        Ok(release)
    }

    /// `rollback [vN]`: a new release copying `version` (default: the newest
    /// succeeded release before the current one). Returns it and the
    /// version it copies.
    pub async fn rollback(
        &self,
        app: &str,
        version: Option<u32>,
    ) -> PlatformResult<(Release, u32)> {
        let _guard = self.lock(app).await;
        let store = self.store();
        let current = store.current_release(app)?.ok_or_else(|| {
            PlatformError::conflict(format!("{app} has no releases to roll back"))
        })?;
        let target = match version {
            Some(version) => version,
            None => previous_version(store, app, current.version)?,
        };
        let target = store.release(app, target)?;
        if let ReleaseStatus::Failed { .. } = &target.status {
            // Its code or config never served: a copy would fail the same
            // way, or serve what was refused.
            return Err(PlatformError::conflict(format!(
                "v{} of {app} failed, so it cannot be rolled back to; pick a release that succeeded (see `wpaas releases -a {app}`)",
                target.version
            )));
        }
        if let Some(slug) = &target.slug {
            // In a cluster, it may be stored on another node only.
            let _ = self.ensure_slug(slug).await;
        }
        // The slug must not be collected while the new release starts.
        let _pin = match &target.slug {
            Some(slug) => Some(self.pin_stored_slug(slug).ok_or_else(|| {
                PlatformError::conflict(format!(
                    "v{} of {app} cannot be rolled back to: its slug was removed (wpaas keeps the slugs of each app's last {KEEP_RELEASE_SLUGS} releases); deploy that code again",
                    target.version,
                ))
            })?),
            None => None,
        };
        let description = format!("Rollback to v{}", target.version);
        let release = self
            .release(
                app,
                &self.release_log(app),
                |mut draft| {
                    draft.slug = target.slug.clone();
                    draft.config = target.config.clone();
                    draft.process_types = target.process_types.clone();
                    draft.argv = target.all_argv();
                    draft
                },
                &description,
            )
            .await?;
        Ok((release, target.version))
    }

    /// Where the activation of a release without a build (config change,
    /// rollback) tells what it does: the app's log, as a deploy's lines
    /// (`app[build]`); its release phase's output is also kept with the
    /// release for `releases:output`.
    fn release_log(&self, app: &str) -> LogSink {
        LogSink::discard().with_app_log(self.logs().app_log(app, "build"))
    }

    /// `healthcheck:set`: changes the fields given (a path without
    /// `enabled` turns the check on); the next release is checked with it,
    /// or not checked when it is off. No app lock: the store updates the record in one
    /// step, and a deploy in progress reads it once, when it activates.
    pub fn update_healthcheck(
        &self,
        app: &str,
        update: HealthcheckUpdate,
    ) -> PlatformResult<Healthcheck> {
        if update.path.as_deref().is_some_and(|p| !p.starts_with('/')) {
            return Err(PlatformError::invalid("a health check path starts with /"));
        }
        // 0 would fail every release before its first byte; an hour is
        // longer than any deploy should hang on one GET.
        if update
            .timeout_ms
            .is_some_and(|ms| !(1..=3_600_000).contains(&ms))
        {
            return Err(PlatformError::invalid(
                "a health check timeout is more than 0 and at most 1h",
            ));
        }
        let record = self.store().update_app(app, |record| {
            if let Some(path) = &update.path {
                record.healthcheck.path = path.clone();
                record.healthcheck.enabled = true;
            }
            if let Some(enabled) = update.enabled {
                record.healthcheck.enabled = enabled;
            }
            if let Some(timeout_ms) = update.timeout_ms {
                record.healthcheck.timeout_ms = timeout_ms;
            }
        })?;
        Ok(record.healthcheck)
    }

    /// `maintenance:on` (`true`) / `maintenance:off`: kept in the app's
    /// record (so a restart and every node of a cluster see it), then the
    /// router here answers the app's requests with the maintenance page,
    /// or stops. The formation is untouched: turning it off serves at
    /// once. Returns whether the app is in maintenance now.
    pub fn set_maintenance(&self, app: &str, on: bool) -> PlatformResult<bool> {
        let was = self.store().app(app)?.maintenance;
        let record = self
            .store()
            .update_app(app, |record| record.maintenance = on)?;
        self.maintenance_changed(&record);
        if was != on {
            let said = if on { "on" } else { "off" };
            self.logs()
                .push(app, "api", &format!("Maintenance mode {said}"));
        }
        Ok(record.maintenance)
    }

    /// `domains:add`: the router sends `domain` to `app` from now on.
    /// Returns the app's domains.
    pub fn add_domain(&self, app: &str, domain: &str) -> PlatformResult<Vec<String>> {
        let record = self.store().add_domain(app, domain)?;
        let added = store::normalize_domain(domain)?;
        self.domain_added(&added, app);
        self.logs()
            .push(app, "api", &format!("Added domain {added}"));
        Ok(record.domains)
    }

    /// `domains:remove`: the router stops routing `domain`. Returns the
    /// app's domains.
    pub fn remove_domain(&self, app: &str, domain: &str) -> PlatformResult<Vec<String>> {
        let record = self.store().remove_domain(app, domain)?;
        self.domain_removed(&store::normalize_domain(domain)?);
        Ok(record.domains)
    }

    /// `domains:clear`: removes each of the app's domains (one that
    /// another request removed meanwhile is gone either way). Returns the
    /// domains removed.
    pub fn clear_domains(&self, app: &str) -> PlatformResult<Vec<String>> {
        let domains = self.store().app(app)?.domains;
        for domain in &domains {
            match self.remove_domain(app, domain) {
                Ok(_) => {}
                Err(err) if err.code() == ErrorCode::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(domains)
    }

    /// `buildpack:set` (a directory on this machine, checked now) or
    /// `buildpack:clear` (`None`). Returns what the app's builds use.
    pub fn set_buildpack(
        &self,
        app: &str,
        buildpack: Option<String>,
    ) -> PlatformResult<Option<String>> {
        let buildpack = buildpack.as_deref().map(check_buildpack).transpose()?;
        let record = self
            .store()
            .update_app(app, |record| record.buildpack = buildpack.clone())?;
        Ok(record.buildpack)
    }

    /// `ps:scale web=2 worker=1`.
    pub async fn set_formation(&self, app: &str, changes: Formation) -> PlatformResult<()> {
        if changes.is_empty() {
            return Err(PlatformError::malformed(
                "no process types given; use e.g. {\"web\": 2}",
            ));
        }
        self.store().app(app)?;
        self.scale(app, &changes).await?;
        let said: Vec<String> = changes.iter().map(|(k, n)| format!("{k} to {n}")).collect();
        self.logs()
            .push(app, "api", &format!("Scaled {}", said.join(", ")));
        Ok(())
    }

    /// `ps:autoscale web` (`Some`) or `ps:autoscale:disable web` (`None`).
    pub async fn set_autoscale(
        &self,
        app: &str,
        kind: &str,
        request: Option<AutoscaleRequest>,
    ) -> PlatformResult<()> {
        let spec = match request {
            Some(request) => Some(autoscale_spec(kind, request)?),
            None if kind != "web" => return Err(PlatformError::invalid("only web is autoscaled")),
            None => None,
        };
        self.store().app(app)?;
        let said = match &spec {
            Some(spec) => format!(
                "Autoscaling web from {} to {} replicas (target {} requests in flight each)",
                spec.min, spec.max, spec.target
            ),
            None => "Autoscaling of web disabled".to_string(),
        };
        self.autoscale(app, spec).await?;
        self.logs().push(app, "api", &said);
        Ok(())
    }

    /// `ps:limits TYPE --memory …`: the limits given change, the type's
    /// others stay; they apply from its next start. Returns the type's
    /// limits.
    pub fn set_process_limits(
        &self,
        app: &str,
        kind: &str,
        request: LimitsRequest,
    ) -> PlatformResult<ProcessLimits> {
        let given = process_limits(request)?;
        self.check_process_type(app, kind)?;
        let mut limits = self
            .store()
            .app(app)?
            .limits
            .remove(kind)
            .unwrap_or_default();
        limits.memory_bytes = given.memory_bytes.or(limits.memory_bytes);
        limits.timeout_ms = given.timeout_ms.or(limits.timeout_ms);
        limits.concurrency = given.concurrency.or(limits.concurrency);
        let record = self.set_limits(app, kind, Some(limits))?;
        Ok(record.limits.get(kind).cloned().unwrap_or_default())
    }

    /// `ps:limits TYPE --reset`: the type runs with the server's defaults
    /// from its next start.
    pub fn reset_process_limits(&self, app: &str, kind: &str) -> PlatformResult<ProcessLimits> {
        self.check_process_type(app, kind)?;
        self.set_limits(app, kind, None)?;
        Ok(ProcessLimits::default())
    }

    /// A type named in a change must be one of the current release's (once
    /// there is one): `ps:limits wbe` is a typo, not a new type.
    fn check_process_type(&self, app: &str, kind: &str) -> PlatformResult<()> {
        self.store().app(app)?;
        let Some(release) = self.store().current_release(app)? else {
            return Ok(());
        };
        Ok(require_type(app, &release, kind)?)
    }

    /// `ps:restart [TYPE | TYPE.N]`.
    pub async fn restart_processes(&self, app: &str, kind: Option<&str>) -> PlatformResult<()> {
        self.store().app(app)?;
        self.restart(app, kind).await?;
        let said = match kind.map(ProcessName::parse).transpose()? {
            Some(ProcessName {
                number: Some(_), ..
            }) => format!("Restarted {} process", kind.unwrap_or_default()),
            Some(ProcessName { kind, .. }) => format!("Restarted {kind} processes"),
            None => "Restarted all processes".to_string(),
        };
        self.logs().push(app, "api", &said);
        Ok(())
    }

    /// `ps:stop TYPE | TYPE.N | run.N`, as on Heroku: a replica of the
    /// formation stops and the formation starts it again, fresh (to run
    /// fewer, `ps:scale`); a one-off run stops for good.
    pub async fn stop_process(&self, app: &str, name: &str) -> PlatformResult<()> {
        self.store().app(app)?;
        match ProcessName::parse(name)? {
            ProcessName {
                kind: "run",
                number: Some(n),
            } => self.stop_run(app, n)?,
            ProcessName { kind: "run", .. } => {
                return Err(PlatformError::invalid(
                    "name the one-off run to stop, as `wpaas ps` lists it: run.N",
                ))
            }
            _ => self.restart(app, Some(name)).await?,
        }
        self.logs().push(app, "api", &format!("Stopped {name}"));
        Ok(())
    }
}

/// `changes` without unsetting vars that are not set (in `config`): they
/// change nothing, and a change of nothing makes no release (a conflict).
fn without_absent_unsets(
    changes: ConfigChanges,
    config: &std::collections::BTreeMap<String, String>,
    app: &str,
) -> PlatformResult<ConfigChanges> {
    let (kept, absent): (ConfigChanges, ConfigChanges) = changes
        .into_iter()
        .partition(|(key, value)| value.is_some() || config.contains_key(key));
    if kept.is_empty() {
        let keys: Vec<&str> = absent.keys().map(String::as_str).collect();
        return Err(PlatformError::conflict(format!(
            "{} not set on {app}; nothing to unset, no release made",
            keys.join(", ")
        )));
    }
    Ok(kept)
}

/// `Set A, B config vars`, `Unset C config vars` or both.
fn config_description(changes: &ConfigChanges) -> String {
    let keys = |set: bool| {
        changes
            .iter()
            .filter(|(_, value)| value.is_some() == set)
            .map(|(key, _)| key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (set, unset) = (keys(true), keys(false));
    match (set.is_empty(), unset.is_empty()) {
        (false, true) => format!("Set {set} config vars"),
        (true, false) => format!("Unset {unset} config vars"),
        _ => format!("Set {set}; unset {unset} config vars"),
    }
}

/// The newest succeeded release older than `current`.
fn previous_version(store: &dyn store::Store, app: &str, current: u32) -> PlatformResult<u32> {
    store
        .releases(app)?
        .into_iter()
        .filter(|r| r.version < current && r.status.as_str() == "succeeded")
        .map(|r| r.version)
        .max()
        .ok_or_else(|| {
            PlatformError::conflict(format!("{app} has no earlier release to roll back to"))
        })
}

/// Checks an autoscale request for `kind` (only `web` scales on load).
fn autoscale_spec(kind: &str, request: AutoscaleRequest) -> PlatformResult<Autoscale> {
    if kind != "web" {
        return Err(PlatformError::invalid(format!(
            "only web can be autoscaled (it scales on requests in flight); scale {kind} with ps:scale"
        )));
    }
    let spec = Autoscale {
        min: request.min,
        max: request.max,
        target: request.target,
        cooldown_ms: request.cooldown_ms,
        idle_ms: request.idle_ms,
    };
    if spec.max == 0 || spec.min > spec.max || spec.max > MAX_REPLICAS {
        return Err(PlatformError::invalid(format!(
            "need 0 ≤ min ≤ max, 1 ≤ max ≤ {MAX_REPLICAS}; got min {} max {}",
            spec.min, spec.max
        )));
    }
    if spec.target == 0 {
        return Err(PlatformError::invalid(
            "target must be at least 1 request in flight per replica",
        ));
    }
    Ok(spec)
}

/// Reads limits as users write them (`256M`, `10s`, `32`) and checks them.
fn process_limits(request: LimitsRequest) -> PlatformResult<ProcessLimits> {
    use crate::runtime::limits::{parse_duration, parse_size};
    let bad = |msg: String| PlatformError::invalid(msg);
    let memory = request
        .memory
        .map(|m| parse_size(&m))
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let timeout = request
        .timeout
        .map(|t| parse_duration(&t))
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let concurrency = request
        .concurrency
        .map(|c| {
            c.parse::<u32>()
                .map_err(|_| bad(format!("concurrency {c:?} is not a number")))
        })
        .transpose()?;
    if memory.is_some_and(|m| !((1 << 20)..=(4 << 30)).contains(&m)) {
        return Err(bad("memory must be between 1M and 4G".into()));
    }
    if concurrency == Some(0) {
        return Err(bad("concurrency must be at least 1".into()));
    }
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(bad("timeout must be more than 0".into()));
    }
    if memory.is_none() && timeout.is_none() && concurrency.is_none() {
        return Err(bad(
            "give at least one of memory, timeout, concurrency".into()
        ));
    }
    Ok(ProcessLimits {
        memory_bytes: memory.map(|m| m as u64),
        timeout_ms: timeout.map(|t| t.as_millis() as u64),
        concurrency,
    })
}

/// Checks a custom buildpack directory on this machine before it is set.
fn check_buildpack(path: &str) -> PlatformResult<String> {
    if !std::path::Path::new(path).is_absolute() {
        return Err(PlatformError::invalid(format!(
            "buildpack {path} must be an absolute directory path on the server"
        )));
    }
    wpaas_builder::buildpack::check_buildpack(path.into())
        .map(|p| p.display().to_string())
        .map_err(|e| PlatformError::invalid(e.to_string()))
}
