//! The JSON HTTP API of `wpaas server` (default 127.0.0.1:7070): an axum
//! route table of small handlers, one file per resource.
//!
//! Every request needs `Authorization: Bearer TOKEN`; without it the answer
//! is 401 and nothing runs. Errors are a `wpaas_api::ErrorBody` with the
//! status of its code ([`error_response`], the one mapping). Deploys and
//! runs answer with a stream of lines (chunked), the last of which is
//! [`RESULT_PREFIX`] + a JSON object. Handlers only read the request and
//! write the answer: changes go through `Platform` (control/changes.rs),
//! and records become wire types in [`wire`].

mod apps;
pub mod auth;
mod builds;
mod extract;
mod kv;
mod logs;
mod ps;
mod releases;
mod run;
pub mod wire;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use http::{StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use tower::ServiceExt;
use wpaas_api::ErrorBody;

use super::error::PlatformError;
use super::platform::Platform;
use crate::respond;
use crate::runtime::BoxBody;

/// The last line of a deploy or run stream starts with this, then a JSON
/// object (`wpaas_api::builds::DeployResult`, `wpaas_api::run::RunResult`).
pub use wpaas_api::stream::RESULT_PREFIX;

/// What a handler answers: axum's response, or the error to map.
type ApiResult = Result<axum::response::Response, PlatformError>;

/// The platform, as handlers get it.
type Shared = State<Arc<Platform>>;

/// The API's route table over `platform`, answering only requests that
/// `auth` lets through (the token, or a dashboard session).
pub fn router(platform: Arc<Platform>, auth: Arc<auth::Auth>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/apps", get(ps::traffic))
        .route("/nodes", get(nodes))
        .route("/slugs/{digest}", get(slug))
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{app}",
            get(apps::show).delete(apps::destroy).patch(apps::rename),
        )
        .route(
            "/apps/{app}/healthcheck",
            get(apps::healthcheck).patch(apps::set_healthcheck),
        )
        .route(
            "/apps/{app}/maintenance",
            get(apps::maintenance)
                .put(apps::maintenance_on)
                .delete(apps::maintenance_off),
        )
        .route(
            "/apps/{app}/buildpack",
            get(apps::buildpack).put(apps::set_buildpack),
        )
        .route(
            "/apps/{app}/domains",
            get(apps::domains)
                .post(apps::add_domain)
                .delete(apps::clear_domains),
        )
        .route("/apps/{app}/domains/{domain}", delete(apps::remove_domain))
        .route("/apps/{app}/kv", get(kv::info).post(kv::create))
        .route("/apps/{app}/kv/{bucket}", delete(kv::destroy))
        .route(
            "/apps/{app}/kv/{bucket}/keys/{key}",
            get(kv::get).put(kv::set).delete(kv::delete),
        )
        .route(
            "/apps/{app}/config",
            get(releases::config).patch(releases::set_config),
        )
        .route("/apps/{app}/releases", get(releases::list))
        .route("/apps/{app}/releases/{version}", get(releases::show))
        .route(
            "/apps/{app}/releases/{version}/output",
            get(releases::output),
        )
        .route("/apps/{app}/rollback", post(releases::rollback))
        .route("/apps/{app}/deploy", post(builds::deploy))
        .route("/apps/{app}/builds", get(builds::list))
        .route("/apps/{app}/builds/{id}/output", get(builds::output))
        .route("/apps/{app}/ps", get(ps::list))
        .route("/apps/{app}/metrics", get(ps::series))
        .route("/apps/{app}/ps/restart", post(ps::restart))
        .route("/apps/{app}/ps/stop", post(ps::stop))
        .route("/apps/{app}/formation", patch(ps::scale))
        .route(
            "/apps/{app}/autoscale/{kind}",
            put(ps::autoscale).delete(ps::stop_autoscale),
        )
        .route(
            "/apps/{app}/limits/{kind}",
            put(ps::limits).delete(ps::reset_limits),
        )
        .route("/apps/{app}/run", post(run::run))
        .route("/apps/{app}/logs", get(logs::logs))
        // An unknown path and a known path with another method are both
        // "no API route": the CLI's paths are the API.
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        // Last, so that it wraps every route and the fallback: nothing
        // answers before the token is checked.
        .layer(middleware::from_fn_with_state(auth, require_token))
        .with_state(platform)
}

/// Answers one request with `api` (see [`router`]).
pub async fn serve(api: Router, req: hyper::Request<Incoming>) -> hyper::Response<BoxBody> {
    let response = match api.oneshot(without_trailing_slash(req)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    response.map(|body| body.map_err(Into::into).boxed_unsync())
}

/// `/apps/` is `/apps`, as it always was.
fn without_trailing_slash<B>(mut req: hyper::Request<B>) -> hyper::Request<B> {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let mut trimmed = path.trim_end_matches('/').to_string();
        if trimmed.is_empty() {
            trimmed.push('/');
        }
        if let Some(query) = req.uri().query() {
            trimmed = format!("{trimmed}?{query}");
        }
        if let Ok(uri) = trimmed.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

async fn require_token(State(auth): State<Arc<auth::Auth>>, req: Request, next: Next) -> ApiResult {
    let who = auth.check(req.method(), req.headers())?;
    Ok(super::actor::acting_as(Some(who.to_string()), next.run(req)).await)
}

async fn no_route(uri: Uri) -> PlatformError {
    PlatformError::not_found(format!("no API route {}", uri.path().trim_end_matches('/')))
}

/// `GET /nodes`: the cluster's live nodes.
async fn nodes(State(platform): Shared) -> ApiResult {
    ok(&platform.nodes().await?)
}

/// `GET /slugs/DIGEST`: a stored slug, as packed (the nodes of a cluster
/// fetch the slugs they run from each other, and check their sha256).
async fn slug(
    State(platform): Shared,
    extract::Segments(digest): extract::Segments<String>,
) -> ApiResult {
    let Some(path) = platform.store().slug_path(&digest) else {
        return Err(PlatformError::not_found(format!("no slug {digest} here")));
    };
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| PlatformError::Internal(anyhow::anyhow!("reading {}: {e}", path.display())))?;
    Ok(reply(respond::full(
        StatusCode::OK,
        "application/octet-stream",
        bytes,
    )))
}

/// `GET /metrics`: the server's counters, Prometheus text format.
async fn metrics(State(platform): Shared) -> ApiResult {
    let page = super::metrics::render(&platform);
    Ok(reply(respond::full(
        StatusCode::OK,
        crate::metrics::CONTENT_TYPE,
        page,
    )))
}

impl IntoResponse for PlatformError {
    fn into_response(self) -> axum::response::Response {
        reply(error_response(self))
    }
}

/// A response of ours as axum's.
fn reply(response: hyper::Response<BoxBody>) -> axum::response::Response {
    response.map(axum::body::Body::new)
}

/// 200 with `value` as JSON.
fn ok<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    Ok(reply(respond::json(StatusCode::OK, value)))
}

/// 201 with `value` as JSON.
fn created<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    Ok(reply(respond::json(StatusCode::CREATED, value)))
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
    respond::json(status, &body)
}
