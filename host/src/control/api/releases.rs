//! Config vars and releases: `/apps/APP/config`, `/apps/APP/releases`,
//! `/apps/APP/rollback`. Changing config or rolling back makes a release.

use axum::extract::State;
use wpaas_api::apps::config::{ConfigChanges, ConfigVars};
use wpaas_api::releases::{parse_version, Release, ReleaseOutput, RollbackRequest, RolledBack};

use super::extract::{Body, Segments};
use super::wire;
use super::{created, ok, ApiResult, Shared};
use crate::control::error::PlatformError;

/// `GET /apps/APP/config`.
pub async fn config(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    let store = platform.store();
    store.app(&app)?;
    let vars: ConfigVars = store.config(&app)?;
    ok(&vars)
}

/// `PATCH /apps/APP/config` (201): the release it made.
pub async fn set_config(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(changes): Body<ConfigChanges>,
) -> ApiResult {
    created(&Release::from(platform.set_config(&app, changes).await?))
}

/// `GET /apps/APP/releases`, oldest first.
pub async fn list(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    let store = platform.store();
    store.app(&app)?;
    ok(&wire::all::<_, Release>(store.releases(&app)?))
}

/// `GET /apps/APP/releases/vN`.
pub async fn show(
    State(platform): Shared,
    Segments((app, version)): Segments<(String, String)>,
) -> ApiResult {
    let version = parse_version(&version).map_err(|e| PlatformError::malformed(e.to_string()))?;
    ok(&Release::from(platform.store().release(&app, version)?))
}

/// `GET /apps/APP/releases/vN/output`: the release and its release
/// phase's kept output.
pub async fn output(
    State(platform): Shared,
    Segments((app, version)): Segments<(String, String)>,
) -> ApiResult {
    let version = parse_version(&version).map_err(|e| PlatformError::malformed(e.to_string()))?;
    let store = platform.store();
    let release = store.release(&app, version)?;
    let path = store.home().release_output(&app, version);
    let output =
        tokio::task::spawn_blocking(move || crate::control::release_output::read(&path)).await??;
    ok(&ReleaseOutput {
        release: release.into(),
        output,
    })
}

/// `POST /apps/APP/rollback` (201).
pub async fn rollback(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(body): Body<RollbackRequest>,
) -> ApiResult {
    let (release, rolled_back_to) = platform.rollback(&app, body.version).await?;
    created(&RolledBack {
        release: release.into(),
        rolled_back_to,
    })
}
