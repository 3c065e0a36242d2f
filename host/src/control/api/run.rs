//! `POST /apps/APP/run`: a one-off process, its output streamed.

use std::sync::Arc;

use axum::extract::State;
use wpaas_api::run::{RunRequest, RunResult};

use super::extract::{Body, Segments};
use super::{reply, ApiResult, Shared};
use crate::control::platform::Platform;
use crate::control::store::validate_config_key;
use crate::respond;

/// Runs `command` once with the release's config plus `env`.
pub async fn run(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(request): Body<RunRequest>,
) -> ApiResult {
    platform.store().app(&app)?;
    for key in request.env.keys() {
        validate_config_key(key)?;
    }
    let (command, env) = platform
        .one_off(&app, &request.command, &request.env)
        .await?;
    Ok(reply(run_stream(platform, app, command, env)))
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
) -> hyper::Response<crate::runtime::BoxBody> {
    // Bounded: a client reading slowly loses lines (and is told how many),
    // the process never waits for it.
    let (tx, lines) = crate::control::log_sink::ClientLines::channel();
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
        let result = RunResult {
            exit: exit.code(),
            process,
            status: exit.to_string(),
        };
        tx.send_wait(wpaas_api::stream::result_line(&result)).await;
    });
    respond::lines(lines)
}
