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
            json_status(StatusCode::CREATED, &platform.create_app(&body.name)?)
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
            json_ok(&platform.update_healthcheck(app, body)?)
        }
        (Method::DELETE, ["apps", app]) => {
            platform.destroy_app(app).await?;
            json_ok(&wpaas_api::apps::Destroyed {
                destroyed: app.to_string(),
            })
        }
        (Method::GET, ["apps", app, "config"]) => {
            store.app(app)?;
            json_ok(&store.config(app)?)
        }
        (Method::PATCH, ["apps", app, "config"]) => {
            let changes: wpaas_api::apps::config::ConfigChanges = read_json(req).await?;
            json_status(
                StatusCode::CREATED,
                &platform.set_config(app, changes).await?,
            )
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
            let body: wpaas_api::releases::RollbackRequest = read_json(req).await?;
            let (release, target) = platform.rollback(app, body.version).await?;
            json_status(
                StatusCode::CREATED,
                &json!({ "release": release, "rolled_back_to": target }),
            )
        }
        (Method::POST, ["apps", app, "deploy"]) => {
            deploy(platform.clone(), app.to_string(), req).await
        }
        (Method::GET, ["apps", app, "domains"]) => json_ok(&store.app(app)?.domains),
        (Method::POST, ["apps", app, "domains"]) => {
            let body: wpaas_api::apps::AddDomain = read_json(req).await?;
            json_status(
                StatusCode::CREATED,
                &platform.add_domain(app, &body.domain)?,
            )
        }
        (Method::DELETE, ["apps", app, "domains", domain]) => {
            json_ok(&platform.remove_domain(app, domain)?)
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
            let body: wpaas_api::ps::AutoscaleRequest = read_json(req).await?;
            platform.set_autoscale(app, kind, Some(body)).await?;
            json_ok(&processes(&platform, app)?)
        }
        (Method::DELETE, ["apps", app, "autoscale", kind]) => {
            platform.set_autoscale(app, kind, None).await?;
            json_ok(&processes(&platform, app)?)
        }
        (Method::PUT, ["apps", app, "limits", kind]) => {
            let body: wpaas_api::ps::LimitsRequest = read_json(req).await?;
            json_ok(&platform.set_process_limits(app, kind, body)?)
        }
        (Method::GET, ["apps", app, "ps"]) => json_ok(&processes(&platform, app)?),
        (Method::PATCH, ["apps", app, "formation"]) => {
            let changes: wpaas_api::ps::Formation = read_json(req).await?;
            platform.set_formation(app, changes).await?;
            json_ok(&processes(&platform, app)?)
        }
        (Method::POST, ["apps", app, "ps", "restart"]) => {
            let body: wpaas_api::ps::RestartRequest = read_json(req).await?;
            platform
                .restart_processes(app, body.kind.as_deref())
                .await?;
            json_ok(&processes(&platform, app)?)
        }
        (Method::GET, ["apps", app, "buildpack"]) => json_ok(&wpaas_api::apps::Buildpack {
            buildpack: store.app(app)?.buildpack,
        }),
        (Method::PUT, ["apps", app, "buildpack"]) => {
            let body: wpaas_api::apps::Buildpack = read_json(req).await?;
            json_ok(&wpaas_api::apps::Buildpack {
                buildpack: platform.set_buildpack(app, body.buildpack)?,
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
    // Held by the sinks, which the output streams' tasks drop when they
    // end: the channel closes once every output line is out.
    let (in_use, mut all_out) = tokio::sync::mpsc::channel::<()>(1);
    let sink = |fd: u8| -> crate::runtime::output::LineSink {
        let (tx, in_use) = (tx.clone(), in_use.clone());
        Arc::new(move |line: &str| {
            let _in_use = &in_use;
            tx.offer(format!("{fd} {line}"));
        })
    };
    let stdio = crate::runtime::Stdio {
        stdout: sink(1),
        stderr: sink(2),
    };
    drop(in_use);
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
    let build_log = platform.logs().sink(&app, "build");
    let log = log.with_app_log(Arc::new(move |line: &str| {
        if !line.starts_with(RESULT_PREFIX) {
            build_log(line);
        }
    }));
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
        log.send_wait(wpaas_api::stream::result_line(&last)).await;
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
