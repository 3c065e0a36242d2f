//! A release goes live. [`Platform::release`] makes `vN+1` from the
//! current release (pending), activates it and records the outcome, which
//! moves the current pointer only on success. Activation is, in order:
//! load every process type's code, run the release phase, health-check a
//! fresh `web`, then swap the routing entry and replace the long-running
//! processes (new replicas start before old ones stop). Until the swap,
//! the old release keeps serving; a failure anywhere before it changes
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

use super::formation::{is_long_running, limits_for, replicas, web_plan};
use super::{user_facing, LogSink, Platform};
use crate::control::release_output::ReleaseOutputFile;
use crate::control::store::{App, Release, ReleaseDraft};
use crate::router::AppRoute;
use crate::runtime::output::LineSink;
use crate::runtime::{CgiContext, Limits, Stdio, Uncounted, WebProcess};

/// How long a release command may run.
pub const RELEASE_PHASE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

impl Platform {
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
                    ReleaseDraft {
                        by: crate::control::actor::current(),
                        ..(change.take().expect("called once"))(draft)
                    }
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
    pub(super) async fn activate(
        &self,
        app: &App,
        release: &Release,
        log: Option<&LogSink>,
    ) -> Result<()> {
        let say = |line: String| {
            if let Some(log) = log {
                log.send(line);
            }
        };
        if let Some(slug) = &release.slug {
            self.ensure_slug(slug).await?;
        }
        let web = match (release.command("web"), web_plan(app)) {
            (Some(command), Some((n, wake))) => {
                say(format!("-----> Loading web: {command}"));
                let web = self.load_web(app, release).await?;
                web.set_replicas(n);
                web.set_wake_from_zero(wake);
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
            if app.healthcheck.enabled {
                say(format!("-----> Health check: GET {}", app.healthcheck.path));
                health_check(
                    web,
                    &app.name,
                    &app.healthcheck.path,
                    Duration::from_millis(app.healthcheck.timeout_ms),
                )
                .await?;
                say("       passed".into());
            } else {
                // `healthcheck:set --off`: traffic as soon as the code loads.
                say("-----> Health check: off (healthcheck:set PATH turns it on)".into());
            }
        }
        if web.is_some() {
            self.note_serving(&app.name, release.version);
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

    /// Loads `release`'s web process (no replicas yet), its events going
    /// to the app's log.
    pub(super) async fn load_web(&self, app: &App, release: &Release) -> Result<WebProcess> {
        let (wasm, path, env) = self.process(release, "web")?;
        let runtime = self.runtime.clone();
        let limits = limits_for(app, "web");
        let (web, _) = tokio::task::spawn_blocking(move || runtime.load_web(&path, env, limits))
            .await
            .map_err(|e| anyhow!("loading panicked: {e}"))?
            .with_context(|| format!("could not load {wasm}"))?;
        web.set_events(Arc::new(self.logs.app_log(&app.name, "web")));
        Ok(web)
    }

    /// Runs the release's `release` process once; anything but exit 0
    /// fails the release. Its output goes to `log` and is kept with the
    /// release (`releases:output`), with how it ended.
    async fn release_phase(
        &self,
        app: &str,
        release: &Release,
        command: &str,
        limits: Limits,
        log: &LogSink,
    ) -> Result<()> {
        let kept = Arc::new(ReleaseOutputFile::create(
            &self.store.home().release_output(app, release.version),
        ));
        let heading = format!("-----> Running release command: {command}");
        kept.line(&heading);
        log.send(heading);
        let outcome = self
            .run_release_command(app, release, limits, log, &kept)
            .await;
        match &outcome {
            Ok(()) => {
                kept.line("       done");
                log.send("       done");
            }
            // The client is told the error once, by whoever reports the
            // release's outcome; the kept output says it too.
            Err(err) => kept.line(&format!(" !     {err:#}")),
        }
        outcome
    }

    async fn run_release_command(
        &self,
        app: &str,
        release: &Release,
        limits: Limits,
        log: &LogSink,
        kept: &Arc<ReleaseOutputFile>,
    ) -> Result<()> {
        let (wasm, env) = self.command(release, "release", limits).await?;
        let out: Arc<dyn LineSink> = Arc::new(ReleasePhaseLines(log.clone(), kept.clone()));
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
        Ok(())
    }
}

/// The release command's output in the deploy's (each line indented under
/// the step's `-----> Running release command` heading) and in the
/// release's kept output.
struct ReleasePhaseLines(LogSink, Arc<ReleaseOutputFile>);

impl LineSink for ReleasePhaseLines {
    fn line(&self, line: &str) {
        let line = format!("       {line}");
        self.1.line(&line);
        self.0.send(line);
    }
}

/// GET `path` on a fresh instance; any status below 500 within `timeout`
/// passes.
async fn health_check(web: &WebProcess, app: &str, path: &str, timeout: Duration) -> Result<()> {
    let request = hyper::Request::get(path)
        .header(http::header::HOST, format!("{app}.localhost"))
        // The platform's request, not the app's traffic: `ps` does not
        // count it as served.
        .extension(Uncounted)
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
