//! `/apps`, `/apps/APP` and an app's settings: health check, maintenance
//! mode, buildpack, domains.

use wpaas_api::apps::{
    AddDomain, App, AppInfo, Buildpack, CreateApp, Destroyed, Healthcheck, HealthcheckUpdate,
    Maintenance, RenameApp,
};

use super::extract::{Body, Segments};
use super::wire;
use super::{created, ok, ApiResult, Shared};
use axum::extract::State;

/// `GET /apps`.
pub async fn list(State(platform): Shared) -> ApiResult {
    ok(&wire::all::<_, App>(platform.store().apps()?))
}

/// `POST /apps` (201).
pub async fn create(State(platform): Shared, Body(body): Body<CreateApp>) -> ApiResult {
    created(&App::from(platform.create_app(&body.name)?))
}

/// `GET /apps/APP`: the app, its serving release and its URL.
pub async fn show(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    let store = platform.store();
    ok(&AppInfo {
        app: store.app(&app)?.into(),
        release: store.current_release(&app)?.map(Into::into),
        url: platform.app_url(&app),
        data: platform.kv_info(&app).await?.buckets,
    })
}

/// `PATCH /apps/APP {"name"}`: renames the app; answers it.
pub async fn rename(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(body): Body<RenameApp>,
) -> ApiResult {
    ok(&App::from(platform.rename_app(&app, &body.name).await?))
}

/// `DELETE /apps/APP`.
pub async fn destroy(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    platform.destroy_app(&app).await?;
    ok(&Destroyed { destroyed: app })
}

/// `GET /apps/APP/healthcheck`: the check new releases get.
pub async fn healthcheck(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    ok(&Healthcheck::from(platform.store().app(&app)?.healthcheck))
}

/// `PATCH /apps/APP/healthcheck`: answers the resulting check.
pub async fn set_healthcheck(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(update): Body<HealthcheckUpdate>,
) -> ApiResult {
    ok(&Healthcheck::from(
        platform.update_healthcheck(&app, update)?,
    ))
}

/// `GET /apps/APP/maintenance`.
pub async fn maintenance(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    let maintenance = platform.store().app(&app)?.maintenance;
    ok(&Maintenance { app, maintenance })
}

/// `PUT /apps/APP/maintenance`: the router answers the app's requests
/// with a 503 maintenance page (no body needed; doing it twice is fine).
pub async fn maintenance_on(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    let maintenance = platform.set_maintenance(&app, true)?;
    ok(&Maintenance { app, maintenance })
}

/// `DELETE /apps/APP/maintenance`: the app serves again.
pub async fn maintenance_off(
    State(platform): Shared,
    Segments(app): Segments<String>,
) -> ApiResult {
    let maintenance = platform.set_maintenance(&app, false)?;
    ok(&Maintenance { app, maintenance })
}

/// `GET /apps/APP/buildpack`.
pub async fn buildpack(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    ok(&Buildpack {
        buildpack: platform.store().app(&app)?.buildpack,
    })
}

/// `PUT /apps/APP/buildpack`: a directory path, or `null` to detect one
/// per build again.
pub async fn set_buildpack(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(body): Body<Buildpack>,
) -> ApiResult {
    ok(&Buildpack {
        buildpack: platform.set_buildpack(&app, body.buildpack)?,
    })
}

/// `GET /apps/APP/domains`.
pub async fn domains(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    ok(&platform.store().app(&app)?.domains)
}

/// `POST /apps/APP/domains` (201): the app's domains.
pub async fn add_domain(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(body): Body<AddDomain>,
) -> ApiResult {
    created(&platform.add_domain(&app, &body.domain)?)
}

/// `DELETE /apps/APP/domains`: removes them all; answers the app's
/// domains now (none).
pub async fn clear_domains(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    platform.clear_domains(&app)?;
    ok(&Vec::<String>::new())
}

/// `DELETE /apps/APP/domains/DOMAIN`: the app's domains.
pub async fn remove_domain(
    State(platform): Shared,
    Segments((app, domain)): Segments<(String, String)>,
) -> ApiResult {
    ok(&platform.remove_domain(&app, &domain)?)
}
