//! Builds: `/apps/APP/builds`, a build's output, and `POST
//! /apps/APP/deploy`, which streams one.

use axum::extract::State;
use wpaas_api::builds::{Build, BuildOutput, DeployQuery, DeployResult};

use super::extract::{Params, Segments};
use super::wire;
use super::{ok, reply, ApiResult, Shared, RESULT_PREFIX};
use crate::control::error::PlatformError;
use crate::control::platform::LogSink;
use crate::respond;

/// `GET /apps/APP/builds`.
pub async fn list(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    let store = platform.store();
    store.app(&app)?;
    ok(&wire::all::<_, Build>(store.builds(&app)?))
}

/// `GET /apps/APP/builds/ID/output` (ID may be `latest`): the build and
/// its log, without the stream's result line.
pub async fn output(
    State(platform): Shared,
    Segments((app, id)): Segments<(String, String)>,
) -> ApiResult {
    let store = platform.store();
    let builds = store.builds(&app)?;
    let build = match id.as_str() {
        "latest" => builds.into_iter().max_by_key(|b| build_number(&b.id)),
        id => builds.into_iter().find(|b| b.id == id),
    }
    .ok_or_else(|| {
        PlatformError::not_found(format!(
            "{app} has no build {id}; see `wpaas builds -a {app}`"
        ))
    })?;
    let path = store.build_log_path(&build.id)?;
    let log = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
        .await?
        .unwrap_or_default();
    let output: String = log
        .lines()
        .filter(|line| !line.starts_with(RESULT_PREFIX))
        .map(|line| format!("{line}\n"))
        .collect();
    ok(&BuildOutput {
        build: build.into(),
        output,
    })
}

/// `b12` → 12, for "latest".
fn build_number(id: &str) -> u64 {
    id.trim_start_matches('b').parse().unwrap_or(0)
}

/// `POST /apps/APP/deploy?commit=SHA`: receives a source tarball, then
/// streams the build and release.
///
/// `commit` (sent by the `git push` hook) names the commit the tarball
/// holds: the release is described `Deploy <short sha>`, and a commit that
/// was built before is released from that build's slug instead of rebuilt.
pub async fn deploy(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Params(query): Params<DeployQuery>,
    body: axum::body::Body,
) -> ApiResult {
    platform.store().app(&app)?;
    query
        .validate()
        .map_err(|e| PlatformError::malformed(e.to_string()))?;
    let commit = query.commit;
    let body = crate::control::upload::receive(&platform, body).await?;
    let (log, lines) = LogSink::channel();
    let log = log.with_app_log(platform.logs().app_log(&app, "build"));
    // A deploy of a commit is a `git push` (the hook names the commit).
    let who = match commit {
        Some(_) => Some("git".to_string()),
        None => crate::control::actor::current(),
    };
    tokio::spawn(crate::control::actor::acting_as(who, async move {
        let result = crate::control::deploy::deploy_steps(
            &platform,
            &app,
            body.path().to_path_buf(),
            commit,
            &log,
        )
        .await;
        body.remove().await;
        let last = match result {
            Ok((version, url)) => {
                for line in crate::control::deploy::released_lines(&platform, &app, version) {
                    log.send_wait(line).await;
                }
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
    }));
    Ok(reply(respond::lines(lines)))
}
