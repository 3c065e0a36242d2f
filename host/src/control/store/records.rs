//! The records the store keeps: apps, releases and builds.
//!
//! They are on disk (JSON values in existing databases) and, for now, on the
//! wire (the API answers with them): field names and serde shapes do not
//! change. A new field needs `#[serde(default)]` so that old records still
//! read.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How the autoscaler sizes `web`: between `min` and `max` replicas, aiming
/// at `target` requests in flight per replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscale {
    /// Fewest replicas (0: scale to zero when idle).
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Requests in flight per replica to aim at.
    pub target: u32,
    /// Load must stay low this long before replicas are removed.
    pub cooldown_ms: u64,
    /// With `min` 0: no request for this long drops `web` to zero.
    pub idle_ms: u64,
}

/// Per-process-type limits; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLimits {
    /// Memory of one instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// How long one request (or run) may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Requests one web replica serves at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// Health check used when a release is activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// Whether a new release is checked at all (`healthcheck:set --off`);
    /// records from before the switch existed are on.
    #[serde(default = "default_hc_enabled")]
    pub enabled: bool,
    /// The path GET is sent to.
    #[serde(default = "default_hc_path")]
    pub path: String,
    /// How long the answer may take.
    #[serde(default = "default_hc_timeout")]
    pub timeout_ms: u64,
}

fn default_hc_enabled() -> bool {
    true
}

fn default_hc_path() -> String {
    "/".to_string()
}

fn default_hc_timeout() -> u64 {
    10_000
}

impl Default for Healthcheck {
    fn default() -> Self {
        Healthcheck {
            enabled: true,
            path: default_hc_path(),
            timeout_ms: default_hc_timeout(),
        }
    }
}

/// An app: its settings and which release serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// The app's name (see [`super::validate_app_name`]).
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Custom buildpack (path or name); `None` = detect.
    #[serde(default)]
    pub buildpack: Option<String>,
    /// The check a new release passes before it serves.
    #[serde(default)]
    pub healthcheck: Healthcheck,
    /// Custom domains, lower-case, in the order they were added. Kept in sync with the
    /// global domain index: change them only with [`super::AppStore::add_domain`] /
    /// [`super::AppStore::remove_domain`].
    #[serde(default)]
    pub domains: Vec<String>,
    /// Process type → replicas.
    #[serde(default)]
    pub formation: BTreeMap<String, u32>,
    /// Autoscaling of `web`, when on (`ps:autoscale`).
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// Process type → limits that differ from the defaults (`ps:limits`).
    #[serde(default)]
    pub limits: BTreeMap<String, ProcessLimits>,
    /// Version of the release that is serving; set only by
    /// [`super::ReleaseStore::finish_release`].
    #[serde(default)]
    pub current: Option<u32>,
    /// Maintenance mode (`maintenance:on`): the router answers for the
    /// app; its processes keep running.
    #[serde(default)]
    pub maintenance: bool,
}

impl App {
    /// A new app record with the defaults.
    pub fn new(name: &str) -> Self {
        App {
            name: name.to_string(),
            created_at: now_rfc3339(),
            buildpack: None,
            healthcheck: Healthcheck::default(),
            domains: Vec::new(),
            formation: BTreeMap::new(),
            autoscale: None,
            limits: BTreeMap::new(),
            current: None,
            maintenance: false,
        }
    }
}

/// Where a release is in its life: pending until it serves or fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// Allocated, being activated.
    Pending,
    /// Served (it became, or was, the app's current release).
    Succeeded,
    /// Never served.
    Failed {
        /// Why, in one line.
        reason: String,
    },
}

impl ReleaseStatus {
    /// `pending`, `succeeded` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Failed { .. } => "failed",
        }
    }
}

/// An immutable, versioned release: slug + config + process types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The app.
    pub app: String,
    /// `N` of `vN`: 1, 2, … per app, never reused.
    pub version: u32,
    /// Slug digest (sha256 hex); `None` for a release made before any deploy
    /// (e.g. `config:set` on a new app).
    pub slug: Option<String>,
    /// Config vars.
    pub config: BTreeMap<String, String>,
    /// Procfile order: (type, command).
    pub process_types: Vec<(String, String)>,
    /// Type → the argv it runs with, as the Procfile parser split the
    /// command (quotes removed, `$VARS` unexpanded). Empty in releases
    /// recorded before it existed: see [`Release::argv`].
    #[serde(default)]
    pub argv: BTreeMap<String, Vec<String>>,
    /// What made it ("Deploy 3f2a1c", "Set FOO config vars", "Rollback to v3").
    pub description: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Pending, succeeded or failed.
    pub status: ReleaseStatus,
    /// Who made it: `cli`, `api`, `dashboard` or `git` (see
    /// `control::actor`); `None` for the server's own and older releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Release {
    /// The command of a process type.
    pub fn command(&self, process_type: &str) -> Option<&str> {
        self.process_types
            .iter()
            .find(|(t, _)| t == process_type)
            .map(|(_, c)| c.as_str())
    }

    /// The argv of a process type: the one stored, or for a release
    /// recorded before argv was stored, its command split by the Procfile
    /// parser (quotes and all). `None` when the type does not exist or its
    /// command cannot be split.
    pub fn argv(&self, process_type: &str) -> Option<Vec<String>> {
        match self.argv.get(process_type) {
            Some(argv) => Some(argv.clone()),
            None => wpaas_builder::procfile::split_words(self.command(process_type)?),
        }
    }

    /// Every type's argv (see [`Release::argv`]), for a release made from
    /// this one.
    pub fn all_argv(&self) -> BTreeMap<String, Vec<String>> {
        self.process_types
            .iter()
            .filter_map(|(kind, _)| Some((kind.clone(), self.argv(kind)?)))
            .collect()
    }
}

/// What a release draft closure returns (see
/// [`super::ReleaseStore::next_release_with`]): everything of a release except
/// the fields the store assigns (app, version, time, status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseDraft {
    /// Slug digest.
    pub slug: Option<String>,
    /// Config vars.
    pub config: BTreeMap<String, String>,
    /// Procfile order: (type, command).
    pub process_types: Vec<(String, String)>,
    /// Type → argv (see [`Release::argv`]).
    pub argv: BTreeMap<String, Vec<String>>,
    /// What makes it.
    pub description: String,
    /// Who makes it.
    pub by: Option<String>,
}

impl ReleaseDraft {
    /// A draft that keeps `base`'s slug, config and process types (or starts empty).
    pub fn inherit(base: Option<&Release>, description: impl Into<String>) -> Self {
        match base {
            Some(r) => ReleaseDraft {
                slug: r.slug.clone(),
                config: r.config.clone(),
                process_types: r.process_types.clone(),
                argv: r.all_argv(),
                description: description.into(),
                by: None,
            },
            None => ReleaseDraft {
                description: description.into(),
                ..Default::default()
            },
        }
    }
}

/// Where a build is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BuildStatus {
    /// Building (its holder's lease is alive, see [`super::Store::recover_interrupted`]).
    Running,
    /// Built.
    Succeeded,
    /// Did not build, or was interrupted.
    Failed {
        /// Why, in one line.
        reason: String,
    },
}

impl BuildStatus {
    /// `running`, `succeeded` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed { .. } => "failed",
        }
    }
}

/// One build of an app's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// `b<n>`, unique in this store (also across destroy/re-create of an app).
    pub id: String,
    /// The app.
    pub app: String,
    /// Running, succeeded or failed.
    pub status: BuildStatus,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC, once finished.
    pub finished_at: Option<String>,
    /// The release the build produced, if it got that far.
    pub release: Option<u32>,
    /// The slug digest the build produced.
    pub slug: Option<String>,
    /// The git commit built, when the source came from `git push`.
    #[serde(default)]
    pub commit: Option<String>,
    /// The app's custom buildpack when the build started (`None`: detected).
    #[serde(default)]
    pub buildpack: Option<String>,
}

/// Where a build's source came from (see [`super::BuildStore::start_build`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSource {
    /// The git commit, for `git push`.
    pub commit: Option<String>,
    /// The app's custom buildpack, if one is set.
    pub buildpack: Option<String>,
}

/// What a successful build produced (see [`super::BuildStore::finish_build`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOutput {
    /// The slug digest.
    pub slug: Option<String>,
    /// The release made of it.
    pub release: Option<u32>,
}

/// Current time, RFC 3339 UTC with seconds precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_recorded_without_argv_split_their_command_like_the_procfile() {
        // A record written before releases stored argv.
        let old = serde_json::json!({
            "app": "a", "version": 1, "slug": null, "config": {},
            "process_types": [["worker", "jobs.wasm --name \"a b\""]],
            "description": "d", "created_at": now_rfc3339(),
            "status": {"state": "succeeded"},
        });
        let r: Release = serde_json::from_value(old).unwrap();
        assert!(r.argv.is_empty());
        let want = vec!["jobs.wasm", "--name", "a b"];
        assert_eq!(r.argv("worker").unwrap(), want);
        assert_eq!(r.argv("web"), None);
        // A release made from it stores the split argv.
        let draft = ReleaseDraft::inherit(Some(&r), "Set X config vars");
        assert_eq!(draft.argv["worker"], want);
    }

    #[test]
    fn records_serialize_readably() {
        let r = Release {
            app: "a".into(),
            version: 1,
            slug: None,
            config: BTreeMap::new(),
            process_types: vec![("web".into(), "app.wasm".into())],
            argv: BTreeMap::new(),
            description: "d".into(),
            created_at: now_rfc3339(),
            status: ReleaseStatus::Failed { reason: "x".into() },
            by: Some("cli".into()),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"]["state"], "failed");
        assert_eq!(v["by"], "cli");
        assert_eq!(v["status"]["reason"], "x");
        assert_eq!(v["process_types"][0][0], "web");
        let back: Release = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, r);
        // A release recorded before `by` existed reads as made by nobody.
        let mut old = v;
        old.as_object_mut().unwrap().remove("by");
        let old: Release = serde_json::from_value(old).unwrap();
        assert_eq!(old.by, None);
    }

    #[test]
    fn old_app_records_still_read() {
        // An app written before domains, autoscale, limits and
        // maintenance existed.
        let app: App =
            serde_json::from_str(r#"{"name":"a","created_at":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(app.healthcheck, Healthcheck::default());
        assert!(app.domains.is_empty() && app.current.is_none());
        assert!(!app.maintenance);
        let build: Build = serde_json::from_str(
            r#"{"id":"b1","app":"a","status":{"state":"running"},"started_at":"x","finished_at":null,"release":null,"slug":null}"#,
        )
        .unwrap();
        assert_eq!(build.status, BuildStatus::Running);
    }

    #[test]
    fn health_checks_stored_before_the_off_switch_are_on() {
        let app: App = serde_json::from_str(
            r#"{"name":"a","created_at":"x","healthcheck":{"path":"/up","timeout_ms":500}}"#,
        )
        .unwrap();
        assert!(app.healthcheck.enabled);
        assert_eq!(app.healthcheck.path, "/up");
    }
}
