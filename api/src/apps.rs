//! Apps: `/apps`, `/apps/APP`, and the settings that hang off an app
//! (health check, buildpack, domains).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ps::{Autoscale, ProcessLimits};
use crate::releases::Release;

/// `POST /apps`: create an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateApp {
    /// `^[a-z][a-z0-9-]{1,29}$`.
    pub name: String,
}

/// `PATCH /apps/APP`: rename the app (`apps:rename`); answers the [`App`]
/// under its new name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameApp {
    /// The new name, `^[a-z][a-z0-9-]{1,29}$`, not taken.
    pub name: String,
}

/// An app as `GET /apps` lists it and `POST /apps` answers (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// The app's name, also its host name under the router's domain.
    pub name: String,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Custom buildpack directory on the server; `None`: detected.
    #[serde(default)]
    pub buildpack: Option<String>,
    /// How a new release is checked before it takes traffic.
    #[serde(default)]
    pub healthcheck: Healthcheck,
    /// Custom domains, lower-case, in the order they were added.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Process type → replicas asked for (`ps:scale`).
    #[serde(default)]
    pub formation: BTreeMap<String, u32>,
    /// Autoscaling of `web`, when on (`ps:autoscale`).
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// Process type → limits that differ from the server's defaults.
    #[serde(default)]
    pub limits: BTreeMap<String, ProcessLimits>,
    /// The version of the release that is serving.
    #[serde(default)]
    pub current: Option<u32>,
    /// In maintenance mode (`maintenance:on`): the router answers every
    /// request with a 503 maintenance page; the formation keeps running.
    #[serde(default)]
    pub maintenance: bool,
}

/// `GET`, `PUT` (on) and `DELETE` (off) `/apps/APP/maintenance` answer
/// this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// The app.
    pub app: String,
    /// Whether the router answers its requests with a maintenance page.
    pub maintenance: bool,
}

/// `GET /apps/APP`: the app, its serving release and its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    /// The app.
    pub app: App,
    /// The release that is serving, if any.
    pub release: Option<Release>,
    /// Where the router serves it.
    pub url: String,
    /// Its key-value buckets (`wpaas kv:create`), by name.
    #[serde(default)]
    pub data: Vec<crate::kv::Bucket>,
}

/// `DELETE /apps/APP` answers this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destroyed {
    /// The name of the app that is gone.
    pub destroyed: String,
}

/// The deploy health check: `GET path` must answer below 500 within
/// `timeout_ms` before a new release takes traffic — unless it is turned
/// off (`enabled: false`, `healthcheck:set --off`), when a release takes
/// traffic as soon as its code loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// Whether new releases are checked; absent (an older server): `true`.
    #[serde(default = "default_healthcheck_enabled")]
    pub enabled: bool,
    /// Path requested, starting with `/`.
    #[serde(default = "default_healthcheck_path")]
    pub path: String,
    /// How long the check may take.
    #[serde(default = "default_healthcheck_timeout")]
    pub timeout_ms: u64,
}

fn default_healthcheck_enabled() -> bool {
    true
}

fn default_healthcheck_path() -> String {
    "/".to_string()
}

fn default_healthcheck_timeout() -> u64 {
    Healthcheck::DEFAULT_TIMEOUT_MS
}

impl Healthcheck {
    /// The timeout an app has until it sets another: 10 s.
    pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
}

impl Default for Healthcheck {
    fn default() -> Self {
        Healthcheck {
            enabled: true,
            path: default_healthcheck_path(),
            timeout_ms: Healthcheck::DEFAULT_TIMEOUT_MS,
        }
    }
}

/// `PATCH /apps/APP/healthcheck`: the fields given change; answers the
/// resulting [`Healthcheck`]. A `path` without `enabled` also turns the
/// check on (pointing it somewhere means "check this"); `{"enabled":
/// false}` turns it off and keeps the path and timeout for when it is
/// turned on again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthcheckUpdate {
    /// Turn the check on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// New path, starting with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// New timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `GET`/`PUT /apps/APP/buildpack`: the app's custom buildpack (`null`:
/// detect one per build).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildpack {
    /// An absolute directory path on the server, or `None`.
    pub buildpack: Option<String>,
}

/// `POST /apps/APP/domains`: route a custom domain to the app. Answers
/// (201) the app's domains, as `GET /apps/APP/domains` and `DELETE
/// /apps/APP/domains/DOMAIN` do: a JSON array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddDomain {
    /// The host name, e.g. `www.example.com`.
    pub domain: String,
}

/// `GET`/`PATCH /apps/APP/config` bodies.
pub mod config {
    use std::collections::BTreeMap;

    /// `GET /apps/APP/config`: the current config vars.
    pub type ConfigVars = BTreeMap<String, String>;

    /// `PATCH /apps/APP/config`: `"KEY": "value"` sets, `"KEY": null`
    /// unsets; answers (201) the [`crate::releases::Release`] it made.
    pub type ConfigChanges = BTreeMap<String, Option<String>>;
}
