//! The JSON HTTP API of `wpaas server` (default 127.0.0.1:7070).
//!
//! Every request needs `Authorization: Bearer TOKEN`; without it the answer is
//! 401 and nothing changes. Errors are `{"error": "one line"}` with a 4xx/5xx
//! status. Deploys answer with a stream of build-log lines (chunked), the
//! last of which is `RESULT_PREFIX` + a JSON object.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::PlatformError;
use super::platform::{replicas, LogSink, Platform};
use super::token::constant_time_eq;
use crate::runtime::BoxBody;

use wpaas_api::builds::DeployResult;
/// The last line of a deploy stream starts with this, then a JSON object
/// `{"release": N, "url": …}` or `{"error": "…"}`.
pub use wpaas_api::stream::RESULT_PREFIX;
use wpaas_api::ErrorBody;

/// Largest unpacked source.
pub const MAX_UNPACKED: u64 = 1 << 30;

type ApiResult = Result<hyper::Response<BoxBody>, PlatformError>;

/// Handles one API request.
pub async fn handle(
    platform: Arc<Platform>,
    token: Arc<str>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<BoxBody> {
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.trim(), token.as_bytes()));
    if !authorized {
        return error_response(PlatformError::unauthorized(
            "missing or invalid API token (run `wpaas login`, or set WPAAS_TOKEN)",
        ));
    }
    match route(platform, req).await {
        Ok(response) => response,
        Err(err) => error_response(err),
    }
}

async fn route(platform: Arc<Platform>, req: hyper::Request<Incoming>) -> ApiResult {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    let store = platform.store();
    match (method, segments.as_slice()) {
        (Method::GET, ["metrics"]) => Ok(hyper::Response::builder()
            .header(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
            .body(
                Full::new(Bytes::from(super::metrics::render(&platform)))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("static response")),
        (Method::GET, ["apps"]) => json_ok(&store.apps()?),
        (Method::POST, ["apps"]) => {
            let body: wpaas_api::apps::CreateApp = read_json(req).await?;
            let app = store.create_app(&body.name)?;
            platform.app_created(&app);
            platform.logs().push(&app.name, "api", "App created");
            json_status(StatusCode::CREATED, &app)
        }
        (Method::GET, ["apps", app]) => {
            let record = store.app(app)?;
            let current = store.current_release(app)?;
            json_ok(&json!({
                "app": record,
                "release": current,
                "url": platform.app_url(app),
            }))
        }
        (Method::PATCH, ["apps", app, "healthcheck"]) => {
            let body: wpaas_api::apps::HealthcheckUpdate = read_json(req).await?;
            let path = body.path;
            if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
                return Err(PlatformError::invalid("a health check path starts with /"));
            }
            let timeout_ms = body.timeout_ms;
            let record = store.update_app(app, |record| {
                if let Some(path) = &path {
                    record.healthcheck.path = path.clone();
                }
                if let Some(timeout_ms) = timeout_ms {
                    record.healthcheck.timeout_ms = timeout_ms;
                }
            })?;
            json_ok(&record.healthcheck)
        }
        (Method::DELETE, ["apps", app]) => {
            let _guard = platform.lock(app).await;
            platform.destroy(app).await?;
            json_ok(&wpaas_api::apps::Destroyed {
                destroyed: app.to_string(),
            })
        }
        (Method::GET, ["apps", app, "config"]) => {
            store.app(app)?;
            json_ok(&store.config(app)?)
        }
        (Method::PATCH, ["apps", app, "config"]) => {
            let app = app.to_string();
            let changes: BTreeMap<String, Option<String>> = read_json(req).await?;
            if changes.is_empty() {
                return Err(PlatformError::malformed("no config vars given"));
            }
            let _guard = platform.lock(&app).await;
            store.app(&app)?;
            let (set, unset): (Vec<_>, Vec<_>) = changes.iter().partition(|(_, v)| v.is_some());
            let keys = |list: &[(&String, &Option<String>)]| {
                list.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let description = match (set.is_empty(), unset.is_empty()) {
                (false, true) => format!("Set {} config vars", keys(&set)),
                (true, false) => format!("Unset {} config vars", keys(&unset)),
                _ => format!("Set {}; unset {} config vars", keys(&set), keys(&unset)),
            };
            let log = LogSink::discard();
            let release = platform
                .release(
                    &app,
                    &log,
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
            json_status(StatusCode::CREATED, &release)
        }
        (Method::GET, ["apps", app, "releases"]) => {
            store.app(app)?;
            json_ok(&store.releases(app)?)
        }
        (Method::GET, ["apps", app, "releases", version]) => {
            let version = parse_version(version)?;
            json_ok(&store.release(app, version)?)
        }
        (Method::POST, ["apps", app, "rollback"]) => {
            let app = app.to_string();
            let body: wpaas_api::releases::RollbackRequest = read_json(req).await?;
            let _guard = platform.lock(&app).await;
            let current = store.current_release(&app)?.ok_or_else(|| {
                PlatformError::conflict(format!("{app} has no releases to roll back"))
            })?;
            let target = match body.version {
                Some(version) => version,
                None => previous_version(store, &app, current.version)?,
            };
            let target = store.release(&app, target)?;
            let _pin = match &target.slug {
                Some(slug) => Some(platform.pin_stored_slug(slug).ok_or_else(|| {
                    PlatformError::conflict(format!(
                            "v{} of {app} cannot be rolled back to: its slug was removed (wpaas keeps the slugs of each app's last {} releases); deploy that code again",
                            target.version,
                            super::platform::KEEP_RELEASE_SLUGS
                        ),
                    )
                })?),
                None => None,
            };
            let log = LogSink::discard();
            let description = format!("Rollback to v{}", target.version);
            let release = platform
                .release(
                    &app,
                    &log,
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
            json_status(
                StatusCode::CREATED,
                &json!({ "release": release, "rolled_back_to": target.version }),
            )
        }
        (Method::POST, ["apps", app, "deploy"]) => {
            deploy(platform.clone(), app.to_string(), req).await
        }
        (Method::GET, ["apps", app, "domains"]) => json_ok(&store.app(app)?.domains),
        (Method::POST, ["apps", app, "domains"]) => {
            let body: wpaas_api::apps::AddDomain = read_json(req).await?;
            let domain = body.domain.as_str();
            let record = store.add_domain(app, domain)?;
            let added = super::store::normalize_domain(domain)?;
            platform.domain_added(&added, app);
            platform
                .logs()
                .push(app, "api", &format!("Added domain {added}"));
            json_status(StatusCode::CREATED, &record.domains)
        }
        (Method::DELETE, ["apps", app, "domains", domain]) => {
            let record = store.remove_domain(app, domain)?;
            platform.domain_removed(&super::store::normalize_domain(domain)?);
            json_ok(&record.domains)
        }
        (Method::POST, ["apps", app, "run"]) => {
            #[derive(serde::Deserialize)]
            struct RunRequest {
                command: Vec<String>,
                #[serde(default)]
                env: BTreeMap<String, String>,
            }
            let body: RunRequest = read_json(req).await?;
            store.app(app)?;
            for key in body.env.keys() {
                super::store::validate_config_key(key)?;
            }
            let (command, env) = platform.one_off(app, &body.command, &body.env).await?;
            Ok(run_stream(platform.clone(), app.to_string(), command, env))
        }
        (Method::PUT, ["apps", app, "autoscale", kind]) => {
            let body: Value = read_json(req).await?;
            let spec = autoscale_spec(kind, &body)?;
            store.app(app)?;
            let said = format!(
                "Autoscaling web from {} to {} replicas (target {} requests in flight each)",
                spec.min, spec.max, spec.target
            );
            platform.autoscale(app, Some(spec)).await?;
            platform.logs().push(app, "api", &said);
            json_ok(&processes(&platform, app)?)
        }
        (Method::DELETE, ["apps", app, "autoscale", kind]) => {
            if *kind != "web" {
                return Err(PlatformError::invalid("only web is autoscaled"));
            }
            store.app(app)?;
            platform.autoscale(app, None).await?;
            platform
                .logs()
                .push(app, "api", "Autoscaling of web disabled");
            json_ok(&processes(&platform, app)?)
        }
        (Method::PUT, ["apps", app, "limits", kind]) => {
            let body: Value = read_json(req).await?;
            let limits = process_limits(&body)?;
            store.app(app)?;
            let record = platform.set_limits(app, kind, limits)?;
            json_ok(&record.limits)
        }
        (Method::GET, ["apps", app, "ps"]) => json_ok(&processes(&platform, app)?),
        (Method::PATCH, ["apps", app, "formation"]) => {
            let changes: BTreeMap<String, u32> = read_json(req).await?;
            if changes.is_empty() {
                return Err(PlatformError::malformed(
                    "no process types given; use e.g. {\"web\": 2}",
                ));
            }
            store.app(app)?;
            platform.scale(app, &changes).await?;
            let said: Vec<String> = changes.iter().map(|(k, n)| format!("{k} to {n}")).collect();
            platform
                .logs()
                .push(app, "api", &format!("Scaled {}", said.join(", ")));
            json_ok(&processes(&platform, app)?)
        }
        (Method::POST, ["apps", app, "ps", "restart"]) => {
            let body: wpaas_api::ps::RestartRequest = read_json(req).await?;
            store.app(app)?;
            platform.restart(app, body.kind.as_deref()).await?;
            let said = match body.kind.as_deref() {
                Some(kind) => format!("Restarted {kind} processes"),
                None => "Restarted all processes".to_string(),
            };
            platform.logs().push(app, "api", &said);
            json_ok(&processes(&platform, app)?)
        }
        (Method::GET, ["apps", app, "buildpack"]) => json_ok(&wpaas_api::apps::Buildpack {
            buildpack: store.app(app)?.buildpack,
        }),
        (Method::PUT, ["apps", app, "buildpack"]) => {
            let body: Value = read_json(req).await?;
            let buildpack = match &body["buildpack"] {
                Value::Null => None,
                Value::String(path) => Some(check_buildpack(path)?),
                _ => {
                    return Err(PlatformError::malformed(
                        "body needs \"buildpack\": a directory path, or null to clear it",
                    ))
                }
            };
            let record = store.update_app(app, |record| record.buildpack = buildpack.clone())?;
            json_ok(&wpaas_api::apps::Buildpack {
                buildpack: record.buildpack,
            })
        }
        (Method::GET, ["apps", app, "builds", id, "output"]) => {
            let builds = store.builds(app)?;
            let build = match *id {
                "latest" => builds.iter().max_by_key(|b| build_number(&b.id)),
                id => builds.iter().find(|b| b.id == id),
            }
            .ok_or_else(|| {
                PlatformError::not_found(format!(
                    "{app} has no build {id}; see `wpaas builds -a {app}`"
                ))
            })?;
            let path = store.build_log_path(&build.id)?;
            let log = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
                .await
                .map_err(|e| PlatformError::internal(anyhow::anyhow!("{e}")))?
                .unwrap_or_default();
            let output: String = log
                .lines()
                .filter(|line| !line.starts_with(RESULT_PREFIX))
                .map(|line| format!("{line}\n"))
                .collect();
            json_ok(&json!({ "build": build, "output": output }))
        }
        (Method::GET, ["apps", app, "logs"]) => {
            store.app(app)?;
            logs(&platform, app, req.uri().query())
        }
        (Method::GET, ["apps", app, "builds"]) => {
            store.app(app)?;
            json_ok(&store.builds(app)?)
        }
        _ => Err(PlatformError::not_found(format!("no API route {path}"))),
    }
}

/// Runs a one-off process and streams its output: each line is `1 TEXT`
/// (stdout) or `2 TEXT` (stderr); the last is `##wpaas-result
/// {"exit": CODE, "process": "run.N", "status": "…"}`. A client that hangs
/// up stops the process.
fn run_stream(
    platform: Arc<Platform>,
    app: String,
    command: Arc<crate::runtime::WasiCommand>,
    env: crate::runtime::ProcessEnv,
) -> hyper::Response<BoxBody> {
    // Bounded: a client reading slowly loses lines (and is told how many),
    // the process never waits for it.
    let (tx, lines) = super::log_sink::ClientLines::channel();
    let (stdio, mut all_out) = tx.run_stdio();
    tokio::spawn(async move {
        let gone = tx.clone();
        let (process, exit) = platform
            .supervisor()
            .run_once(
                &app,
                &command,
                &env,
                stdio,
                async move { gone.closed().await },
            )
            .await;
        // The output streams' tasks end when the instance is dropped and
        // hand over a last unterminated line as they go; wait for that (a
        // bound, in case a task outlives its instance).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), all_out.recv()).await;
        let result = wpaas_api::run::RunResult {
            exit: exit.code(),
            process,
            status: exit.to_string(),
        };
        tx.send_wait(wpaas_api::stream::result_line(&result)).await;
    });
    line_stream(lines)
}

/// A streaming text response of `lines`, one per line.
fn line_stream(mut lines: tokio::sync::mpsc::Receiver<String>) -> hyper::Response<BoxBody> {
    let stream = futures::stream::poll_fn(move |cx| {
        lines
            .poll_recv(cx)
            .map(|line| line.map(|l| Ok::<_, Infallible>(Frame::data(Bytes::from(l + "\n")))))
    });
    let body = StreamBody::new(stream)
        .map_err(|never| match never {})
        .boxed_unsync();
    hyper::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("static response")
}

/// `GET /apps/APP/logs?n=100&tail=1&ps=web.1&source=router&format=json`:
/// the last `n` lines (default 100) passing the filters, one per line
/// (text, or JSON objects with `format=json`); with `tail`, then every new
/// line as it comes, until the client hangs up.
fn logs(platform: &Platform, app: &str, query: Option<&str>) -> ApiResult {
    let mut filter = crate::logs::Filter::default();
    let (mut n, mut tail, mut json) = (100, false, false);
    for (key, value) in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
    {
        match key {
            "n" => {
                n = value
                    .parse()
                    .map_err(|_| PlatformError::malformed(format!("n={value} is not a number")))?
            }
            "tail" => tail = matches!(value, "1" | "true"),
            "format" => json = value == "json",
            "ps" if !value.is_empty() => filter.process = Some(value.to_string()),
            "source" if !value.is_empty() => filter.source = Some(value.to_string()),
            _ => {}
        }
    }
    let render = move |line: &crate::logs::LogLine| -> Bytes {
        let mut text = if json {
            line.to_json().to_string()
        } else {
            line.to_string()
        };
        text.push('\n');
        Bytes::from(text)
    };
    let (kept, live) = platform.logs().read(app, n, &filter, tail);
    let first: Vec<u8> = kept.iter().flat_map(|l| render(l).to_vec()).collect();
    let first = futures::stream::iter([Bytes::from(first)]);
    let follow = futures::stream::unfold(live, move |live| {
        let filter = filter.clone();
        async move {
            let mut live = live?;
            loop {
                use tokio::sync::broadcast::error::RecvError;
                match live.recv().await {
                    Ok(line) if filter.matches(&line) => return Some((render(&line), Some(live))),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        return Some((render(&crate::logs::lag_line(missed)), Some(live)))
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    use futures::StreamExt;
    let stream = first
        .chain(follow)
        .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let body = StreamBody::new(stream)
        .map_err(|never| match never {})
        .boxed_unsync();
    Ok(hyper::Response::builder()
        .header(
            http::header::CONTENT_TYPE,
            if json {
                "application/x-ndjson"
            } else {
                "text/plain; charset=utf-8"
            },
        )
        .body(body)
        .expect("static response"))
}

/// `{"min", "max", "target", "cooldown_ms"?, "idle_ms"?}` for `web`.
fn autoscale_spec(kind: &str, body: &Value) -> Result<super::store::Autoscale, PlatformError> {
    let bad = |msg: String| PlatformError::invalid(msg);
    if kind != "web" {
        return Err(bad(format!(
            "only web can be autoscaled (it scales on requests in flight); scale {kind} with ps:scale"
        )));
    }
    let field = |name: &str, default: Option<u64>| {
        body[name]
            .as_u64()
            .or(default)
            .ok_or_else(|| bad(format!("autoscale needs \"{name}\" (a whole number)")))
    };
    let spec = super::store::Autoscale {
        min: field("min", Some(0))? as u32,
        max: field("max", None)? as u32,
        target: field("target", None)? as u32,
        cooldown_ms: field("cooldown_ms", Some(30_000))?,
        idle_ms: field("idle_ms", Some(300_000))?,
    };
    if spec.max == 0 || spec.min > spec.max || spec.max > super::platform::MAX_REPLICAS {
        return Err(bad(format!(
            "need 0 ≤ min ≤ max, 1 ≤ max ≤ {}; got min {} max {}",
            super::platform::MAX_REPLICAS,
            spec.min,
            spec.max
        )));
    }
    if spec.target == 0 {
        return Err(bad(
            "target must be at least 1 request in flight per replica".into(),
        ));
    }
    Ok(spec)
}

/// `{"memory": "256M", "timeout": "10s", "concurrency": 32}`, each optional.
fn process_limits(body: &Value) -> Result<super::store::ProcessLimits, PlatformError> {
    use crate::runtime::limits::{parse_duration, parse_size};
    let bad = |msg: String| PlatformError::invalid(msg);
    let text = |name: &str| match &body[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(bad(format!("\"{name}\" must be a string like 256M or 10s"))),
    };
    let memory = text("memory")?
        .map(|m| parse_size(&m))
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let timeout = text("timeout")?
        .map(|t| parse_duration(&t))
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let concurrency = text("concurrency")?
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
    Ok(super::store::ProcessLimits {
        memory_bytes: memory.map(|m| m as u64),
        timeout_ms: timeout.map(|t| t.as_millis() as u64),
        concurrency,
    })
}

/// Checks a custom buildpack directory on this machine before it is set.
fn check_buildpack(path: &str) -> Result<String, PlatformError> {
    if !std::path::Path::new(path).is_absolute() {
        return Err(PlatformError::invalid(format!(
            "buildpack {path} must be an absolute directory path on the server"
        )));
    }
    wpaas_builder::buildpack::check_buildpack(path.into())
        .map(|p| p.display().to_string())
        .map_err(|e| PlatformError::invalid(e.to_string()))
}

/// `b12` → 12, for "latest".
fn build_number(id: &str) -> u64 {
    id.trim_start_matches('b').parse().unwrap_or(0)
}

/// `ps`: each process type of the current release with its command, the
/// formation's replica count and, for running web replicas, live numbers.
fn processes(platform: &Platform, app: &str) -> Result<Vec<Value>, PlatformError> {
    let store = platform.store();
    let record = store.app(app)?;
    let Some(release) = store.current_release(app)? else {
        return Ok(Vec::new());
    };
    let web = platform.web_status(app).unwrap_or_default();
    let mut types: Vec<Value> = release
        .process_types
        .iter()
        .map(|(kind, command)| {
            let running: Vec<Value> = if kind == "web" {
                web.iter()
                    .map(|r| {
                        json!({
                            "name": r.name,
                            "state": "up",
                            "since": humantime::format_rfc3339_seconds(r.since).to_string(),
                            "in_flight": r.in_flight,
                            "served": r.served,
                            "restarts": r.restarts,
                        })
                    })
                    .collect()
            } else {
                platform
                    .supervisor()
                    .status(app, kind)
                    .iter()
                    .map(|p| json!(p))
                    .collect()
            };
            let mut process = json!({
                "type": kind,
                "command": command,
                "quantity": if kind == "release" { 0 } else { replicas(&record, kind) },
                "replicas": running,
            });
            if let (Some(spec), "web") = (&record.autoscale, kind.as_str()) {
                process["autoscale"] = json!(spec);
                process["quantity"] = json!(web.len());
            }
            if let Some(limits) = record.limits.get(kind) {
                process["limits"] = json!(limits);
            }
            if kind == "web" {
                process["recent"] = json!(platform.metrics().recent(app));
            }
            process
        })
        .collect();
    let runs = platform.supervisor().runs(app);
    if !runs.is_empty() {
        types.push(json!({
            "type": "run",
            "command": "one-off processes",
            "quantity": runs.len(),
            "replicas": runs,
        }));
    }
    Ok(types)
}

/// The newest succeeded release older than `current`.
fn previous_version(
    store: &dyn super::store::Store,
    app: &str,
    current: u32,
) -> Result<u32, PlatformError> {
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

fn parse_version(text: &str) -> Result<u32, PlatformError> {
    text.trim_start_matches('v').parse().map_err(|_| {
        PlatformError::malformed(format!("invalid release version {text:?}; use e.g. v3"))
    })
}

/// Receives a source tarball, then streams the build and release.
///
/// `?commit=SHA` (sent by the `git push` hook) names the commit the tarball
/// holds: the release is described `Deploy <short sha>`, and a commit that
/// was built before is released from that build's slug instead of rebuilt.
async fn deploy(platform: Arc<Platform>, app: String, req: hyper::Request<Incoming>) -> ApiResult {
    platform.store().app(&app)?;
    let commit = commit_param(req.uri().query())?;
    let body = super::upload::receive(&platform, req.into_body()).await?;
    let (log, lines) = LogSink::channel();
    let log = log.with_app_log(platform.logs().app_log(&app, "build"));
    tokio::spawn(async move {
        let result =
            super::deploy::deploy_steps(&platform, &app, body.path().to_path_buf(), commit, &log)
                .await;
        body.remove().await;
        let last = match result {
            Ok((version, url)) => {
                log.send_wait(format!("-----> Released v{version}: {url}"))
                    .await;
                DeployResult::Released {
                    release: version,
                    url,
                }
            }
            Err(err) => {
                log.send_wait(format!(" !     {err:#}")).await;
                DeployResult::Failed {
                    error: format!("{err:#}"),
                }
            }
        };
        log.send_result(wpaas_api::stream::result_line(&last)).await;
    });
    Ok(line_stream(lines))
}

/// The `commit` query parameter: a full git object id (SHA-1 or SHA-256).
fn commit_param(query: Option<&str>) -> Result<Option<String>, PlatformError> {
    let Some(commit) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("commit="))
    else {
        return Ok(None);
    };
    let hex = commit
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex || !matches!(commit.len(), 40 | 64) {
        return Err(PlatformError::malformed(format!(
            "invalid commit {commit:?}: give the full lower-case hex object id"
        )));
    }
    Ok(Some(commit.to_string()))
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: hyper::Request<Incoming>,
) -> Result<T, PlatformError> {
    let bytes = Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| PlatformError::malformed(format!("could not read body: {e}")))?
        .to_bytes();
    let bytes = if bytes.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        bytes
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| PlatformError::malformed(format!("invalid JSON body: {e}")))
}

fn json_ok<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    json_status(StatusCode::OK, value)
}

fn json_status<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> ApiResult {
    let body =
        serde_json::to_vec(value).map_err(|e| PlatformError::internal(anyhow::anyhow!("{e}")))?;
    Ok(hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static response"))
}

/// The one place a [`PlatformError`] becomes an HTTP answer:
/// `{"error": "one line", "code": "invalid"}` with the kind's status. An
/// internal error's detail goes to the server log under a request id; the
/// client gets only the id.
pub(crate) fn error_response(err: PlatformError) -> hyper::Response<BoxBody> {
    let code = err.code();
    // The code decides the status (`ErrorCode::status`, the one mapping);
    // the one exception is a request the API could not even read: 400.
    let status = match err {
        PlatformError::Malformed(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::from_u16(code.status()).expect("error codes map to valid statuses"),
    };
    let body = match &err {
        PlatformError::Internal(detail) => {
            let id = super::token::random_hex(8).unwrap_or_else(|_| "unknown".into());
            tracing::error!(request_id = %id, "internal error: {detail:#}");
            ErrorBody {
                error: format!("internal error (request id {id}); see the server log"),
                code,
                request_id: Some(id),
            }
        }
        _ => ErrorBody::new(code, err.to_string()),
    };
    json_status(status, &body).expect("serializable")
}
