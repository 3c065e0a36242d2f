//! Processes: `ps`, scaling, autoscaling, limits, restarts. Every change
//! answers the app's processes as `ps` lists them (limits: the type's).

use axum::extract::State;
use wpaas_api::ps::{
    AutoscaleRequest, Formation, LimitsRequest, ProcessLimits, ProcessType, Replica,
    RestartRequest, StopRequest,
};

use super::extract::{Body, Segments};
use super::{ok, ApiResult, Shared};
use crate::control::error::PlatformResult;
use crate::control::platform::{replicas, Platform};

/// `GET /apps/APP/ps`.
pub async fn list(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    ok(&processes(&platform, &app)?)
}

/// `GET /apps/APP/metrics`: the last hour of web requests, a point a
/// minute (the dashboard's plots).
pub async fn series(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    platform.store().app(&app)?;
    ok(&platform.metrics().series(&app))
}

/// `GET /metrics/apps`: each app's requests in the last minute and web
/// replicas (the dashboard's apps list).
pub async fn traffic(State(platform): Shared) -> ApiResult {
    let apps = platform.store().apps()?;
    let traffic: Vec<wpaas_api::ps::AppTraffic> = apps
        .iter()
        .map(|app| {
            let recent = platform.metrics().recent(&app.name);
            wpaas_api::ps::AppTraffic {
                app: app.name.clone(),
                requests_per_minute: recent.requests,
                error_rate: recent.error_rate,
                web_replicas: platform.web_replicas(&app.name),
            }
        })
        .collect();
    ok(&traffic)
}

/// `PATCH /apps/APP/formation`: `{"web": 2}`.
pub async fn scale(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(changes): Body<Formation>,
) -> ApiResult {
    platform.set_formation(&app, changes).await?;
    ok(&processes(&platform, &app)?)
}

/// `PUT /apps/APP/autoscale/web`.
pub async fn autoscale(
    State(platform): Shared,
    Segments((app, kind)): Segments<(String, String)>,
    Body(request): Body<AutoscaleRequest>,
) -> ApiResult {
    platform.set_autoscale(&app, &kind, Some(request)).await?;
    ok(&processes(&platform, &app)?)
}

/// `DELETE /apps/APP/autoscale/web`.
pub async fn stop_autoscale(
    State(platform): Shared,
    Segments((app, kind)): Segments<(String, String)>,
) -> ApiResult {
    platform.set_autoscale(&app, &kind, None).await?;
    ok(&processes(&platform, &app)?)
}

/// `PUT /apps/APP/limits/TYPE`: answers the type's resulting limits.
pub async fn limits(
    State(platform): Shared,
    Segments((app, kind)): Segments<(String, String)>,
    Body(request): Body<LimitsRequest>,
) -> ApiResult {
    ok(&ProcessLimits::from(
        platform.set_process_limits(&app, &kind, request)?,
    ))
}

/// `DELETE /apps/APP/limits/TYPE`: back to the server's defaults; answers
/// the type's (now empty) limits.
pub async fn reset_limits(
    State(platform): Shared,
    Segments((app, kind)): Segments<(String, String)>,
) -> ApiResult {
    ok(&ProcessLimits::from(
        platform.reset_process_limits(&app, &kind)?,
    ))
}

/// `POST /apps/APP/ps/restart`: `{"type": "web"}`, or `{}` for all.
pub async fn restart(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(request): Body<RestartRequest>,
) -> ApiResult {
    platform
        .restart_processes(&app, request.kind.as_deref())
        .await?;
    ok(&processes(&platform, &app)?)
}

/// `POST /apps/APP/ps/stop`: `{"process": "web.2"}`.
pub async fn stop(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(request): Body<StopRequest>,
) -> ApiResult {
    platform.stop_process(&app, &request.process).await?;
    ok(&processes(&platform, &app)?)
}

/// Each process type of the current release with its command, the
/// formation's replica count and the replicas that exist (web: with live
/// numbers); one-off runs last, as type `run`.
fn processes(platform: &Platform, app: &str) -> PlatformResult<Vec<ProcessType>> {
    let store = platform.store();
    let record = store.app(app)?;
    let Some(release) = store.current_release(app)? else {
        return Ok(Vec::new());
    };
    let web = platform.web_status(app).unwrap_or_default();
    let mut types: Vec<ProcessType> = release
        .process_types
        .iter()
        .map(|(kind, command)| {
            let is_web = kind == "web";
            let running: Vec<Replica> = if is_web {
                web.iter().cloned().map(Replica::from).collect()
            } else {
                let supervised = platform.supervisor().status(app, kind);
                supervised.into_iter().map(Replica::from).collect()
            };
            let placed = platform.placed(app, kind);
            let running = match (&placed, platform.node_name()) {
                (Some(nodes), Some(me)) => across_nodes(kind, running, nodes, me),
                _ => running,
            };
            let autoscale = record.autoscale.clone().filter(|_| is_web);
            let quantity = match (kind.as_str(), &autoscale) {
                ("release", _) => 0,
                // Autoscaled: what runs now, not a number asked for.
                (_, Some(_)) => placed.map_or(web.len(), |nodes| nodes.len()) as u32,
                _ => replicas(&record, kind),
            };
            ProcessType {
                kind: kind.clone(),
                command: command.clone(),
                quantity,
                replicas: running,
                autoscale: autoscale.map(Into::into),
                limits: record.limits.get(kind).cloned().map(Into::into),
                recent: is_web.then(|| platform.metrics().recent(app)),
            }
        })
        .collect();
    let runs = platform.supervisor().runs(app);
    if !runs.is_empty() {
        types.push(ProcessType {
            kind: "run".to_string(),
            command: "one-off processes".to_string(),
            quantity: runs.len() as u32,
            replicas: runs.into_iter().map(Replica::from).collect(),
            autoscale: None,
            limits: None,
            recent: None,
        });
    }
    Ok(types)
}

/// A cluster's replicas of one type, in replica order: those on this node
/// (`me`) with their live state, the others as placed on their node.
/// Local workers are numbered from 1 on each node; here they take the
/// numbers of their places.
fn across_nodes(kind: &str, local: Vec<Replica>, nodes: &[String], me: &str) -> Vec<Replica> {
    let mut local_workers = local.iter().filter(|_| kind != "web");
    nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let name = format!("{kind}.{}", i + 1);
            let here = if node != me {
                None
            } else if kind == "web" {
                local.iter().find(|r| r.name == name)
            } else {
                local_workers.next()
            };
            match here {
                Some(replica) => Replica {
                    name,
                    node: Some(node.clone()),
                    ..replica.clone()
                },
                None => Replica {
                    name,
                    state: if node == me { "starting" } else { "up" }.to_string(),
                    since: String::new(),
                    in_flight: None,
                    served: None,
                    restarts: 0,
                    last_exit: None,
                    command: None,
                    node: Some(node.clone()),
                },
            }
        })
        .collect()
}
