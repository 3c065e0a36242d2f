//! The embedded state of `wpaas server`, under `WPAAS_HOME`:
//!
//! ```text
//! db/                      sled: apps, releases, builds, domains, counters
//! slugs/<sha256>.tar.gz    content-addressed slugs (shared between apps and releases)
//! slugs/unpacked/<sha256>/ a slug's files, unpacked once for the processes that run it
//! builds/<id>.log          build output
//! cache/build/<app>/       per-app build cache (cargo target dir, custom buildpack cache)
//! git/<app>.git/           bare repository per app, pushed to with `git push`
//! ```
//!
//! Records are JSON values in sled trees, keyed so that a prefix scan lists them in
//! order (`app\0` + big-endian version for releases). Writes that belong together —
//! a new release and its app's version counter, a successful release and the app's
//! `current` pointer, an app and its domain index entries — are one sled transaction
//! across trees, and every write is flushed before the method returns, so a `kill -9`
//! never leaves one half without the other.
//!
//! Transactions in sled 0.34 hold a process-wide lock while their closure runs: the
//! closures passed to [`Store::update_app`] and [`Store::next_release`] must be quick
//! and must not call back into the store.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

/// Errors from the store. Callers map them to HTTP statuses: the `Invalid*` ones to
/// 422/400, `NoSuch*` to 404, `AppExists`/`DomainTaken`/`ReleaseFinished` to 409, the rest
/// to 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid app name {0:?}: use 2-30 characters, lowercase letters, digits and dashes, starting with a letter"
    )]
    InvalidAppName(String),
    #[error("app {0:?} already exists")]
    AppExists(String),
    #[error("no such app: {0:?}")]
    NoSuchApp(String),
    #[error("app {app:?} has no release v{version}")]
    NoSuchRelease { app: String, version: u32 },
    #[error("release v{version} of {app:?} is already finished")]
    ReleaseFinished { app: String, version: u32 },
    #[error("no such build: {0:?}")]
    NoSuchBuild(String),
    #[error(
        "domain {domain:?} is already used by app {app:?}; remove it there first (wpaas domains:remove {domain} -a {app})"
    )]
    DomainTaken { domain: String, app: String },
    #[error(
        "domain {domain:?} cannot be added: {reason}; add a name you own, e.g. www.example.com"
    )]
    ReservedDomain {
        domain: String,
        reason: &'static str,
    },
    #[error("no such domain")]
    NoSuchDomain,
    #[error("invalid domain {0:?}: use letters, digits, dashes and dots (e.g. www.example.com)")]
    InvalidDomain(String),
    #[error(
        "invalid config key {0:?}: use letters, digits and underscores, not starting with a digit"
    )]
    InvalidConfigKey(String),
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("corrupt store: {0}")]
    Corrupt(String),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Db(e),
        }
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

// ---------------------------------------------------------------------------
// Records

/// How the autoscaler sizes `web`: between `min` and `max` replicas, aiming
/// at `target` requests in flight per replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    pub target: u32,
    /// Load must stay low this long before replicas are removed.
    pub cooldown_ms: u64,
    /// With `min` 0: no request for this long drops `web` to zero.
    pub idle_ms: u64,
}

/// Per-process-type limits; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// Health check used when a release is activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(default = "default_hc_path")]
    pub path: String,
    #[serde(default = "default_hc_timeout")]
    pub timeout_ms: u64,
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
            path: default_hc_path(),
            timeout_ms: default_hc_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Custom buildpack (path or name); `None` = detect.
    #[serde(default)]
    pub buildpack: Option<String>,
    #[serde(default)]
    pub healthcheck: Healthcheck,
    /// Custom domains, lower-case, in the order they were added. Kept in sync with the
    /// global domain index: change them only with [`Store::add_domain`] /
    /// [`Store::remove_domain`].
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
    /// Version of the release that is serving; set only by [`Store::finish_release`].
    #[serde(default)]
    pub current: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ReleaseStatus {
    Pending,
    Succeeded,
    Failed { reason: String },
}

impl ReleaseStatus {
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
    pub app: String,
    pub version: u32,
    /// Slug digest (sha256 hex); `None` for a release made before any deploy
    /// (e.g. `config:set` on a new app).
    pub slug: Option<String>,
    pub config: BTreeMap<String, String>,
    /// Procfile order: (type, command).
    pub process_types: Vec<(String, String)>,
    /// Type → the argv it runs with, as the Procfile parser split the
    /// command (quotes removed, `$VARS` unexpanded). Empty in releases
    /// recorded before it existed: see [`Release::argv`].
    #[serde(default)]
    pub argv: BTreeMap<String, Vec<String>>,
    pub description: String,
    pub created_at: String,
    pub status: ReleaseStatus,
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

/// What [`Store::next_release`]'s closure returns: everything of a release except the
/// fields the store assigns (app, version, time, status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseDraft {
    pub slug: Option<String>,
    pub config: BTreeMap<String, String>,
    pub process_types: Vec<(String, String)>,
    /// Type → argv (see [`Release::argv`]).
    pub argv: BTreeMap<String, Vec<String>>,
    pub description: String,
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
            },
            None => ReleaseDraft {
                description: description.into(),
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BuildStatus {
    Running,
    Succeeded,
    Failed { reason: String },
}

impl BuildStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// `b<n>`, unique in this store (also across destroy/re-create of an app).
    pub id: String,
    pub app: String,
    pub status: BuildStatus,
    pub started_at: String,
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

/// Where a build's source came from (see [`Store::start_build`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSource {
    /// The git commit, for `git push`.
    pub commit: Option<String>,
    /// The app's custom buildpack, if one is set.
    pub buildpack: Option<String>,
}

/// What a successful build produced (see [`Store::finish_build`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOutput {
    pub slug: Option<String>,
    pub release: Option<u32>,
}

/// Per-app sequence numbers (not part of the public records).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Counters {
    /// Highest release version ever allocated.
    releases: u32,
    /// Highest per-app build sequence number.
    builds: u64,
}

// ---------------------------------------------------------------------------
// Validation

/// `^[a-z][a-z0-9-]{1,29}$`
pub fn validate_app_name(name: &str) -> Result<(), StoreError> {
    let b = name.as_bytes();
    let ok = (2..=30).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidAppName(name.to_string()))
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`
pub fn validate_config_key(key: &str) -> Result<(), StoreError> {
    let b = key.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidConfigKey(key.to_string()))
    }
}

/// Lower-cases a domain (dropping one trailing dot) and checks it is a host name:
/// dot-separated labels of 1-63 letters, digits and dashes, not starting or ending
/// with a dash, at most 253 characters. (Internationalised names are given in
/// punycode, `xn--…`.)
pub fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    let d = domain.trim().to_ascii_lowercase();
    let d = d.strip_suffix('.').unwrap_or(&d).to_string();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(StoreError::InvalidDomain(domain.to_string()))
    }
}

/// Why a (normalized) domain cannot be an app's custom domain, if it cannot:
/// the router's own names (`localhost` and every `*.localhost`, which it
/// derives as `APP.localhost` for each app — a custom domain is looked up
/// first, so it would take another app's traffic) and IP addresses (a
/// last label of digits only: no top-level domain is numeric).
pub fn reserved_domain(domain: &str) -> Option<&'static str> {
    if domain == "localhost" || domain.ends_with(".localhost") {
        return Some(
            "localhost and *.localhost are the router's own names (APP.localhost reaches app APP)",
        );
    }
    let last = domain.rsplit('.').next().unwrap_or(domain);
    if last.bytes().all(|c| c.is_ascii_digit()) {
        return Some("IP addresses are not domains");
    }
    None
}

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_build_id(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 21
        && s.starts_with('b')
        && s[1..].bytes().all(|c| c.is_ascii_digit())
}

/// Current time, RFC 3339 UTC with seconds precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Runs blocking `f` (an fsync, a tree removal) without holding up an
/// async worker: on a multi-thread runtime's worker it is run in place
/// while the worker's other tasks move to another thread; anywhere else
/// (a blocking thread, a plain thread, a current-thread runtime) it just
/// runs.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

// ---------------------------------------------------------------------------
// Keys and encoding

fn prefix(app: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(app.len() + 1);
    k.extend_from_slice(app.as_bytes());
    k.push(0);
    k
}

fn release_key(app: &str, version: u32) -> Vec<u8> {
    let mut k = prefix(app);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn build_key(app: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(app);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Transactional get + decode.
fn tx_get<T: DeserializeOwned>(
    tree: &TransactionalTree,
    what: &str,
    key: &[u8],
) -> TxResult<Option<T>> {
    match tree.get(key)? {
        Some(v) => match decode(what, &v) {
            Ok(t) => Ok(Some(t)),
            Err(e) => abort(e),
        },
        None => Ok(None),
    }
}

/// Transactional encode + insert.
fn tx_put<T: Serialize>(tree: &TransactionalTree, key: &[u8], value: &T) -> TxResult<()> {
    match encode(value) {
        Ok(bytes) => {
            tree.insert(key, bytes)?;
            Ok(())
        }
        Err(e) => abort(e),
    }
}

fn tx_app(apps: &TransactionalTree, name: &str) -> TxResult<App> {
    match tx_get(apps, "app", name.as_bytes())? {
        Some(app) => Ok(app),
        None => abort(StoreError::NoSuchApp(name.to_string())),
    }
}

// ---------------------------------------------------------------------------
// The store

/// Handle to the store; cheap to clone, shareable between threads.
#[derive(Clone)]
pub struct Store {
    home: PathBuf,
    db: sled::Db,
    apps: sled::Tree,
    releases: sled::Tree,
    builds: sled::Tree,
    domains: sled::Tree,
    counters: sled::Tree,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("home", &self.home).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store under `home`.
    pub fn open(home: &Path) -> Result<Store, StoreError> {
        for dir in ["slugs", "builds", "cache/build"] {
            fs::create_dir_all(home.join(dir))?;
        }
        let db = sled::Config::new().path(home.join("db")).open()?;
        Ok(Store {
            home: home.to_path_buf(),
            apps: db.open_tree("apps")?,
            releases: db.open_tree("releases")?,
            builds: db.open_tree("builds")?,
            domains: db.open_tree("domains")?,
            counters: db.open_tree("counters")?,
            db,
        })
    }

    /// `WPAAS_HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Makes every write so far durable (an fsync: off the async workers).
    pub fn flush(&self) -> Result<(), StoreError> {
        off_worker(|| self.db.flush())?;
        Ok(())
    }

    // ----- apps ------------------------------------------------------------

    pub fn create_app(&self, name: &str) -> Result<App, StoreError> {
        validate_app_name(name)?;
        let app = App {
            name: name.to_string(),
            created_at: now_rfc3339(),
            buildpack: None,
            healthcheck: Healthcheck::default(),
            domains: Vec::new(),
            formation: BTreeMap::new(),
            autoscale: None,
            limits: BTreeMap::new(),
            current: None,
        };
        let bytes = encode(&app)?;
        let counters = encode(&Counters::default())?;
        (&self.apps, &self.counters).transaction(|(apps, ctr)| {
            if apps.get(name.as_bytes())?.is_some() {
                return abort(StoreError::AppExists(name.to_string()));
            }
            apps.insert(name.as_bytes(), bytes.as_slice())?;
            ctr.insert(name.as_bytes(), counters.as_slice())?;
            Ok(())
        })?;
        self.flush()?;
        Ok(app)
    }

    pub fn app(&self, name: &str) -> Result<App, StoreError> {
        match self.apps.get(name.as_bytes())? {
            Some(v) => decode("app", &v),
            None => Err(StoreError::NoSuchApp(name.to_string())),
        }
    }

    /// All apps, sorted by name.
    pub fn apps(&self) -> Result<Vec<App>, StoreError> {
        self.apps
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                decode("app", &v)
            })
            .collect()
    }

    /// Read-modify-write of an app record in one transaction (formation, buildpack,
    /// healthcheck). `name`, `created_at`, `domains` and `current` are owned by the
    /// store and are restored if `f` changes them. Returns the updated app.
    pub fn update_app(&self, name: &str, f: impl FnMut(&mut App)) -> Result<App, StoreError> {
        let f = RefCell::new(f);
        let app = self.apps.transaction(|apps| {
            let before = tx_app(apps, name)?;
            let mut app = before.clone();
            (f.borrow_mut())(&mut app);
            app.name = before.name;
            app.created_at = before.created_at;
            app.domains = before.domains;
            app.current = before.current;
            tx_put(apps, name.as_bytes(), &app)?;
            Ok(app)
        })?;
        self.flush()?;
        Ok(app)
    }

    /// Removes the app with its releases, builds (records, logs) and domains, its
    /// build cache and git repository. Slugs stay: they are content-addressed and may
    /// be shared; [`Store::remove_unused_slugs`] removes those nothing keeps.
    pub fn destroy_app(&self, name: &str) -> Result<(), StoreError> {
        let build_ids = (
            &self.apps,
            &self.releases,
            &self.builds,
            &self.domains,
            &self.counters,
        )
            .transaction(|(apps, releases, builds, domains, counters)| {
                let app = tx_app(apps, name)?;
                let ctr: Counters =
                    tx_get(counters, "counters", name.as_bytes())?.unwrap_or_default();
                for v in 1..=ctr.releases {
                    releases.remove(release_key(name, v))?;
                }
                let mut ids = Vec::new();
                for seq in 1..=ctr.builds {
                    if let Some(b) = builds.remove(build_key(name, seq))? {
                        if let Ok(b) = decode::<Build>("build", &b) {
                            ids.push(b.id);
                        }
                    }
                }
                for d in &app.domains {
                    if domains.get(d.as_bytes())?.as_deref() == Some(name.as_bytes()) {
                        domains.remove(d.as_bytes())?;
                    }
                }
                counters.remove(name.as_bytes())?;
                apps.remove(name.as_bytes())?;
                Ok(ids)
            })?;
        self.flush()?;
        // Best effort: files are not part of the record.
        off_worker(|| {
            for id in build_ids {
                let _ = fs::remove_file(self.home.join("builds").join(format!("{id}.log")));
            }
            let _ = fs::remove_dir_all(self.home.join("cache/build").join(name));
            // A re-created app starts with an empty repository, so pushing the
            // same commits again deploys them.
            let _ = fs::remove_dir_all(self.home.join("git").join(format!("{name}.git")));
        });
        Ok(())
    }

    // ----- domains ---------------------------------------------------------

    /// Adds a custom domain (lower-cased). Domains are globally unique; adding one the
    /// app already has is a no-op; [`reserved_domain`]s are refused. Returns the
    /// updated app.
    pub fn add_domain(&self, app: &str, domain: &str) -> Result<App, StoreError> {
        let domain = normalize_domain(domain)?;
        if let Some(reason) = reserved_domain(&domain) {
            return Err(StoreError::ReservedDomain { domain, reason });
        }
        let updated = (&self.apps, &self.domains).transaction(|(apps, domains)| {
            let mut a = tx_app(apps, app)?;
            if let Some(owner) = domains.get(domain.as_bytes())? {
                if owner.as_ref() != app.as_bytes() {
                    return abort(StoreError::DomainTaken {
                        domain: domain.clone(),
                        app: String::from_utf8_lossy(&owner).into_owned(),
                    });
                }
            }
            domains.insert(domain.as_bytes(), app.as_bytes())?;
            if !a.domains.contains(&domain) {
                a.domains.push(domain.clone());
            }
            tx_put(apps, app.as_bytes(), &a)?;
            Ok(a)
        })?;
        self.flush()?;
        Ok(updated)
    }

    /// Removes a custom domain from the app; `NoSuchDomain` if the app does not have it.
    pub fn remove_domain(&self, app: &str, domain: &str) -> Result<App, StoreError> {
        let domain = normalize_domain(domain).map_err(|_| StoreError::NoSuchDomain)?;
        let updated = (&self.apps, &self.domains).transaction(|(apps, domains)| {
            let mut a = tx_app(apps, app)?;
            let Some(pos) = a.domains.iter().position(|d| *d == domain) else {
                return abort(StoreError::NoSuchDomain);
            };
            a.domains.remove(pos);
            if domains.get(domain.as_bytes())?.as_deref() == Some(app.as_bytes()) {
                domains.remove(domain.as_bytes())?;
            }
            tx_put(apps, app.as_bytes(), &a)?;
            Ok(a)
        })?;
        self.flush()?;
        Ok(updated)
    }

    /// The app that owns a custom domain (case-insensitive; one trailing dot ignored).
    pub fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError> {
        let Ok(domain) = normalize_domain(domain) else {
            return Ok(None);
        };
        Ok(self
            .domains
            .get(domain.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    // ----- releases --------------------------------------------------------

    /// Atomically allocates release vN+1 (N = highest version ever allocated for the
    /// app, whatever `current` is), stores it as `Pending` and returns it.
    ///
    /// `draft` is called inside the transaction with the app's *current* release (the
    /// one serving, `None` before the first successful release). `current` moves only
    /// when a release is finished, so a caller that wants two `config:set`s to see each
    /// other's changes serializes "next_release → activate → finish_release" per app.
    /// `draft` may be called more than once if the transaction is retried; it must not
    /// call into the store.
    /// Config keys of the draft are validated (`InvalidConfigKey`).
    pub fn next_release(
        &self,
        app: &str,
        draft: impl FnMut(Option<&Release>) -> ReleaseDraft,
    ) -> Result<Release, StoreError> {
        let draft = RefCell::new(draft);
        let created_at = now_rfc3339();
        let release = (&self.apps, &self.releases, &self.counters).transaction(
            |(apps, releases, counters)| {
                let a = tx_app(apps, app)?;
                let base: Option<Release> = match a.current {
                    Some(v) => match tx_get(releases, "release", &release_key(app, v))? {
                        Some(r) => Some(r),
                        None => {
                            return abort(StoreError::Corrupt(format!(
                                "app {app} points at missing release v{v}"
                            )))
                        }
                    },
                    None => None,
                };
                let d = (draft.borrow_mut())(base.as_ref());
                for k in d.config.keys() {
                    if let Err(e) = validate_config_key(k) {
                        return abort(e);
                    }
                }
                let mut ctr: Counters =
                    tx_get(counters, "counters", app.as_bytes())?.unwrap_or_default();
                let version = ctr.releases + 1;
                let key = release_key(app, version);
                if releases.get(&key)?.is_some() {
                    return abort(StoreError::Corrupt(format!(
                        "release v{version} of {app} exists beyond the counter"
                    )));
                }
                let release = Release {
                    app: app.to_string(),
                    version,
                    slug: d.slug,
                    config: d.config,
                    process_types: d.process_types,
                    argv: d.argv,
                    description: d.description,
                    created_at: created_at.clone(),
                    status: ReleaseStatus::Pending,
                };
                tx_put(releases, &key, &release)?;
                ctr.releases = version;
                tx_put(counters, app.as_bytes(), &ctr)?;
                Ok(release)
            },
        )?;
        self.flush()?;
        Ok(release)
    }

    /// Finishes a pending release. `Ok(())`: status `Succeeded` and `app.current =
    /// version`, in one transaction. `Err(reason)`: status `Failed { reason }`,
    /// `current` untouched. A release that is not pending gives `ReleaseFinished`.
    pub fn finish_release(
        &self,
        app: &str,
        version: u32,
        outcome: Result<(), String>,
    ) -> Result<Release, StoreError> {
        let release = (&self.apps, &self.releases).transaction(|(apps, releases)| {
            let mut a = tx_app(apps, app)?;
            let key = release_key(app, version);
            let Some(mut r): Option<Release> = tx_get(releases, "release", &key)? else {
                return abort(StoreError::NoSuchRelease {
                    app: app.to_string(),
                    version,
                });
            };
            if r.status != ReleaseStatus::Pending {
                return abort(StoreError::ReleaseFinished {
                    app: app.to_string(),
                    version,
                });
            }
            match &outcome {
                Ok(()) => {
                    r.status = ReleaseStatus::Succeeded;
                    a.current = Some(version);
                    tx_put(apps, app.as_bytes(), &a)?;
                }
                Err(reason) => {
                    r.status = ReleaseStatus::Failed {
                        reason: reason.clone(),
                    };
                }
            }
            tx_put(releases, &key, &r)?;
            Ok(r)
        })?;
        self.flush()?;
        Ok(release)
    }

    pub fn release(&self, app: &str, version: u32) -> Result<Release, StoreError> {
        match self.releases.get(release_key(app, version))? {
            Some(v) => decode("release", &v),
            None => {
                self.app(app)?;
                Err(StoreError::NoSuchRelease {
                    app: app.to_string(),
                    version,
                })
            }
        }
    }

    /// All releases of the app, newest first.
    pub fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError> {
        self.app(app)?;
        self.releases
            .scan_prefix(prefix(app))
            .rev()
            .map(|kv| {
                let (_, v) = kv?;
                decode("release", &v)
            })
            .collect()
    }

    /// The release that is serving (`app.current`), if any.
    pub fn current_release(&self, app: &str) -> Result<Option<Release>, StoreError> {
        match self.app(app)?.current {
            Some(v) => match self.release(app, v) {
                Ok(r) => Ok(Some(r)),
                Err(StoreError::NoSuchRelease { .. }) => Err(StoreError::Corrupt(format!(
                    "app {app} points at missing release v{v}"
                ))),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// The current release's config, or empty.
    pub fn config(&self, app: &str) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self
            .current_release(app)?
            .map(|r| r.config)
            .unwrap_or_default())
    }

    // ----- builds ----------------------------------------------------------

    /// Records a new running build. Its log goes to [`Store::build_log_path`].
    pub fn create_build(&self, app: &str) -> Result<Build, StoreError> {
        self.start_build(app, BuildSource::default())
    }

    /// Records a new running build of `source`.
    pub fn start_build(&self, app: &str, source: BuildSource) -> Result<Build, StoreError> {
        let id = format!("b{}", self.db.generate_id()?);
        let started_at = now_rfc3339();
        let build = (&self.apps, &self.builds, &self.counters).transaction(
            |(apps, builds, counters)| {
                tx_app(apps, app)?;
                let mut ctr: Counters =
                    tx_get(counters, "counters", app.as_bytes())?.unwrap_or_default();
                ctr.builds += 1;
                let build = Build {
                    id: id.clone(),
                    app: app.to_string(),
                    status: BuildStatus::Running,
                    started_at: started_at.clone(),
                    finished_at: None,
                    release: None,
                    slug: None,
                    commit: source.commit.clone(),
                    buildpack: source.buildpack.clone(),
                };
                tx_put(builds, &build_key(app, ctr.builds), &build)?;
                tx_put(counters, app.as_bytes(), &ctr)?;
                Ok(build)
            },
        )?;
        self.flush()?;
        Ok(build)
    }

    fn find_build(&self, app: &str, id: &str) -> Result<(sled::IVec, Build), StoreError> {
        self.app(app)?;
        if is_build_id(id) {
            for kv in self.builds.scan_prefix(prefix(app)).rev() {
                let (k, v) = kv?;
                let b: Build = decode("build", &v)?;
                if b.id == id {
                    return Ok((k, b));
                }
            }
        }
        Err(StoreError::NoSuchBuild(id.to_string()))
    }

    /// Marks a build finished: `Ok(output)` → `Succeeded` with its slug/release,
    /// `Err(reason)` → `Failed`. Returns the updated build.
    pub fn finish_build(
        &self,
        app: &str,
        id: &str,
        outcome: Result<BuildOutput, String>,
    ) -> Result<Build, StoreError> {
        let (key, _) = self.find_build(app, id)?;
        let finished_at = now_rfc3339();
        let build = self.builds.transaction(|builds| {
            let Some(mut b): Option<Build> = tx_get(builds, "build", &key)? else {
                return abort(StoreError::NoSuchBuild(id.to_string()));
            };
            b.finished_at = Some(finished_at.clone());
            match &outcome {
                Ok(out) => {
                    b.status = BuildStatus::Succeeded;
                    b.slug = out.slug.clone();
                    b.release = out.release;
                }
                Err(reason) => {
                    b.status = BuildStatus::Failed {
                        reason: reason.clone(),
                    }
                }
            }
            tx_put(builds, &key, &b)?;
            Ok(b)
        })?;
        self.flush()?;
        Ok(build)
    }

    pub fn build(&self, app: &str, id: &str) -> Result<Build, StoreError> {
        Ok(self.find_build(app, id)?.1)
    }

    /// The app's builds, newest first.
    pub fn builds(&self, app: &str) -> Result<Vec<Build>, StoreError> {
        self.app(app)?;
        self.builds
            .scan_prefix(prefix(app))
            .rev()
            .map(|kv| {
                let (_, v) = kv?;
                decode("build", &v)
            })
            .collect()
    }

    /// The newest succeeded build of exactly `source` (same commit, same
    /// buildpack) whose slug is still stored: `git push` releases it again
    /// instead of rebuilding. `None` for a source without a commit.
    pub fn build_of(&self, app: &str, source: &BuildSource) -> Result<Option<Build>, StoreError> {
        if source.commit.is_none() {
            return Ok(None);
        }
        Ok(self.builds(app)?.into_iter().find(|b| {
            b.status == BuildStatus::Succeeded
                && b.commit == source.commit
                && b.buildpack == source.buildpack
                && b.release.is_some()
                && b.slug
                    .as_deref()
                    .is_some_and(|s| self.slug_path(s).is_some())
        }))
    }

    /// `home/builds/<id>.log`; `NoSuchBuild` for a malformed id (so user input can
    /// never name another path).
    pub fn build_log_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        if !is_build_id(id) {
            return Err(StoreError::NoSuchBuild(id.to_string()));
        }
        Ok(self.home.join("builds").join(format!("{id}.log")))
    }

    /// `home/cache/build/<app>` (not created).
    pub fn build_cache_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        validate_app_name(app)?;
        Ok(self.home.join("cache/build").join(app))
    }

    /// `home/git/<app>.git`, the app's bare repository (not created).
    pub fn git_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        validate_app_name(app)?;
        Ok(self.home.join("git").join(format!("{app}.git")))
    }

    /// Marks releases left `Pending` and builds left `Running` by a previous server
    /// process as failed. Call once at startup, before serving the API. Returns how
    /// many records were changed.
    pub fn recover_interrupted(&self) -> Result<usize, StoreError> {
        const REASON: &str = "interrupted: the server stopped before it finished";
        let mut changed = 0;
        for kv in self.releases.iter() {
            let (k, v) = kv?;
            let mut r: Release = decode("release", &v)?;
            if r.status == ReleaseStatus::Pending {
                r.status = ReleaseStatus::Failed {
                    reason: REASON.to_string(),
                };
                let new = encode(&r)?;
                if self
                    .releases
                    .compare_and_swap(&k, Some(&v), Some(new))?
                    .is_ok()
                {
                    changed += 1;
                }
            }
        }
        for kv in self.builds.iter() {
            let (k, v) = kv?;
            let mut b: Build = decode("build", &v)?;
            if b.status == BuildStatus::Running {
                b.status = BuildStatus::Failed {
                    reason: REASON.to_string(),
                };
                b.finished_at = Some(now_rfc3339());
                let new = encode(&b)?;
                if self
                    .builds
                    .compare_and_swap(&k, Some(&v), Some(new))?
                    .is_ok()
                {
                    changed += 1;
                }
            }
        }
        self.flush()?;
        Ok(changed)
    }

    // ----- slugs -----------------------------------------------------------

    fn slug_file(&self, digest: &str) -> PathBuf {
        self.home.join("slugs").join(format!("{digest}.tar.gz"))
    }

    /// Stores a slug by content; returns its sha256 hex digest. Idempotent; written to
    /// a temporary file, synced, then renamed into place.
    pub fn put_slug(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let dest = self.slug_file(&digest);
        if dest.exists() {
            return Ok(digest);
        }
        let tmp = self.tmp_slug_path()?;
        let result = (|| -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        self.sync_slug_dir();
        Ok(digest)
    }

    /// Like [`Store::put_slug`] for a slug already in a file (streamed, not read into
    /// memory). `src` is copied, not moved.
    pub fn put_slug_file(&self, src: &Path) -> Result<String, StoreError> {
        let tmp = self.tmp_slug_path()?;
        let result = (|| -> io::Result<String> {
            let mut input = fs::File::open(src)?;
            let mut out = fs::File::create(&tmp)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            out.sync_all()?;
            let digest = hex::encode(hasher.finalize());
            let dest = self.slug_file(&digest);
            if dest.exists() {
                fs::remove_file(&tmp)?;
            } else {
                fs::rename(&tmp, &dest)?;
            }
            Ok(digest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        let digest = result?;
        self.sync_slug_dir();
        Ok(digest)
    }

    /// Stores the slug in file `src` by content, moving it (same file system:
    /// `src` is under `home`); returns its digest. Like [`Store::put_slug`].
    pub fn adopt_slug_file(&self, src: &Path) -> Result<String, StoreError> {
        let digest = (|| -> io::Result<String> {
            let mut input = fs::File::open(src)?;
            let mut hasher = Sha256::new();
            io::copy(&mut input, &mut hasher)?;
            input.sync_all()?;
            let digest = hex::encode(hasher.finalize());
            let dest = self.slug_file(&digest);
            if dest.exists() {
                fs::remove_file(src)?;
            } else {
                fs::rename(src, &dest)?;
            }
            Ok(digest)
        })();
        if digest.is_err() {
            let _ = fs::remove_file(src);
        }
        let digest = digest?;
        self.sync_slug_dir();
        Ok(digest)
    }

    /// The slugs that stay: for every app, those of its newest `keep` releases
    /// (whatever their status) and of its current release.
    pub fn slugs_in_use(&self, keep: usize) -> Result<BTreeSet<String>, StoreError> {
        let mut newest: BTreeMap<String, Vec<(u32, Option<String>)>> = BTreeMap::new();
        for kv in self.releases.iter() {
            let (_, v) = kv?;
            let r: Release = decode("release", &v)?;
            newest.entry(r.app).or_default().push((r.version, r.slug));
        }
        let mut in_use = BTreeSet::new();
        for app in self.apps()? {
            let mut releases = newest.remove(&app.name).unwrap_or_default();
            releases.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
            let current = releases.iter().find(|(v, _)| Some(*v) == app.current);
            let kept = releases.iter().take(keep).chain(current);
            in_use.extend(kept.filter_map(|(_, slug)| slug.clone()));
        }
        Ok(in_use)
    }

    /// Deletes every stored slug (tarball and unpacked files) that is neither in
    /// [`Store::slugs_in_use`]`(keep)` nor in `pinned` (slugs about to be
    /// released). Returns the digests removed.
    pub fn remove_unused_slugs(
        &self,
        keep: usize,
        pinned: &BTreeSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        let in_use = self.slugs_in_use(keep)?;
        let slugs = self.home.join("slugs");
        let unpacked = slugs.join("unpacked");
        let mut stored = BTreeSet::new();
        for entry in fs::read_dir(&slugs)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(digest) = name.strip_suffix(".tar.gz").filter(|d| is_digest(d)) {
                stored.insert(digest.to_string());
            }
        }
        for entry in fs::read_dir(&unpacked).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_digest(&name) {
                stored.insert(name);
            }
        }
        let mut removed = Vec::new();
        for digest in stored {
            if in_use.contains(&digest) || pinned.contains(&digest) {
                continue;
            }
            let _ = fs::remove_file(self.slug_file(&digest));
            let _ = fs::remove_dir_all(unpacked.join(&digest));
            removed.push(digest);
        }
        if !removed.is_empty() {
            self.sync_slug_dir();
        }
        Ok(removed)
    }

    /// Path of a stored slug, `None` if the digest is malformed or not stored.
    pub fn slug_path(&self, digest: &str) -> Option<PathBuf> {
        if !is_digest(digest) {
            return None;
        }
        let p = self.slug_file(digest);
        p.is_file().then_some(p)
    }

    fn tmp_slug_path(&self) -> Result<PathBuf, StoreError> {
        let name = format!(".tmp-{}", super::token::random_hex(8)?);
        Ok(self.home.join("slugs").join(name))
    }

    fn sync_slug_dir(&self) {
        if let Ok(d) = fs::File::open(self.home.join("slugs")) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn deploy(s: &Store, app: &str, slug: &str) -> Release {
        let slug = slug.to_string();
        s.next_release(app, |base| ReleaseDraft {
            slug: Some(slug.clone()),
            process_types: vec![("web".into(), "app.wasm".into())],
            ..ReleaseDraft::inherit(base, "Deploy")
        })
        .unwrap()
    }

    #[test]
    fn app_names_are_validated() {
        for ok in ["ab", "hello", "my-app-2", "a-", &"a".repeat(30)] {
            validate_app_name(ok).unwrap();
        }
        for bad in [
            "",
            "a",
            "1app",
            "-app",
            "App",
            "my_app",
            "a.b",
            &"a".repeat(31),
            "é",
        ] {
            assert!(
                matches!(validate_app_name(bad), Err(StoreError::InvalidAppName(_))),
                "{bad:?}"
            );
        }
        let (_d, s) = store();
        let err = s.create_app("Bad").unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        assert!(s.apps().unwrap().is_empty());
    }

    #[test]
    fn config_keys_are_validated() {
        for ok in ["A", "_", "FOO_BAR", "x1", "_9"] {
            validate_config_key(ok).unwrap();
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "é"] {
            assert!(validate_config_key(bad).is_err(), "{bad:?}");
        }
        let (_d, s) = store();
        s.create_app("app").unwrap();
        let err = s
            .next_release("app", |_| ReleaseDraft {
                config: [("BAD-KEY".to_string(), "v".to_string())].into(),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidConfigKey(k) if k == "BAD-KEY"));
        // Nothing was allocated.
        assert!(s.releases("app").unwrap().is_empty());
        assert_eq!(deploy(&s, "app", "x").version, 1);
    }

    #[test]
    fn create_get_list_and_duplicates() {
        let (_d, s) = store();
        let a = s.create_app("zeta").unwrap();
        assert_eq!(a.healthcheck, Healthcheck::default());
        assert_eq!(a.healthcheck.path, "/");
        assert_eq!(a.healthcheck.timeout_ms, 10_000);
        assert!(a.created_at.ends_with('Z'), "{}", a.created_at);
        s.create_app("alpha").unwrap();
        assert!(matches!(s.create_app("zeta"), Err(StoreError::AppExists(n)) if n == "zeta"));
        let names: Vec<_> = s.apps().unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(s.app("zeta").unwrap(), a);
        assert!(matches!(s.app("nope"), Err(StoreError::NoSuchApp(_))));
        assert!(matches!(s.releases("nope"), Err(StoreError::NoSuchApp(_))));
        assert!(matches!(s.config("nope"), Err(StoreError::NoSuchApp(_))));
    }

    #[test]
    fn update_app_changes_formation_but_not_store_owned_fields() {
        let (_d, s) = store();
        s.create_app("app").unwrap();
        let a = s
            .update_app("app", |a| {
                a.formation.insert("web".into(), 4);
                a.buildpack = Some("/bp".into());
                a.healthcheck.path = "/health".into();
                a.name = "other".into();
                a.current = Some(9);
            })
            .unwrap();
        assert_eq!(a.name, "app");
        assert_eq!(a.current, None);
        assert_eq!(a.formation["web"], 4);
        assert_eq!(s.app("app").unwrap(), a);
        assert!(matches!(
            s.update_app("nope", |_| {}),
            Err(StoreError::NoSuchApp(_))
        ));
    }

    #[test]
    fn releases_number_and_finish() {
        let (_d, s) = store();
        s.create_app("app").unwrap();
        assert!(s.current_release("app").unwrap().is_none());
        assert!(s.config("app").unwrap().is_empty());

        let r1 = deploy(&s, "app", "slug1");
        assert_eq!(r1.version, 1);
        assert_eq!(r1.status, ReleaseStatus::Pending);
        assert_eq!(s.app("app").unwrap().current, None);
        let r1 = s.finish_release("app", 1, Ok(())).unwrap();
        assert_eq!(r1.status, ReleaseStatus::Succeeded);
        assert_eq!(s.app("app").unwrap().current, Some(1));

        // Config change based on the current release.
        let r2 = s
            .next_release("app", |base| {
                let mut d = ReleaseDraft::inherit(base, "Set FOO config vars");
                d.config.insert("FOO".into(), "bar".into());
                d
            })
            .unwrap();
        assert_eq!(r2.version, 2);
        assert_eq!(r2.slug.as_deref(), Some("slug1"));
        assert_eq!(r2.command("web"), Some("app.wasm"));
        s.finish_release("app", 2, Ok(())).unwrap();
        assert_eq!(s.config("app").unwrap()["FOO"], "bar");

        // A failed release leaves current alone and still uses up its number.
        let r3 = deploy(&s, "app", "broken");
        let r3 = s
            .finish_release("app", r3.version, Err("health check failed: 500".into()))
            .unwrap();
        assert_eq!(
            r3.status,
            ReleaseStatus::Failed {
                reason: "health check failed: 500".into()
            }
        );
        assert_eq!(s.app("app").unwrap().current, Some(2));
        assert_eq!(s.current_release("app").unwrap().unwrap().version, 2);

        // N is the highest version, not current; the draft's base is current.
        let r4 = s
            .next_release("app", |base| {
                assert_eq!(base.unwrap().version, 2);
                ReleaseDraft::inherit(base, "Rollback to v1")
            })
            .unwrap();
        assert_eq!(r4.version, 4);

        // Finishing twice, or unknown versions, are errors.
        assert!(matches!(
            s.finish_release("app", 2, Ok(())),
            Err(StoreError::ReleaseFinished { version: 2, .. })
        ));
        assert!(matches!(
            s.finish_release("app", 99, Ok(())),
            Err(StoreError::NoSuchRelease { version: 99, .. })
        ));
        assert!(matches!(
            s.release("app", 99),
            Err(StoreError::NoSuchRelease { version: 99, .. })
        ));
        assert!(matches!(
            s.release("nope", 1),
            Err(StoreError::NoSuchApp(_))
        ));

        let versions: Vec<_> = s
            .releases("app")
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(versions, [4, 3, 2, 1]);
        assert_eq!(s.release("app", 1).unwrap().description, "Deploy");
    }

    #[test]
    fn release_numbering_is_atomic_under_concurrency() {
        let (_d, s) = store();
        s.create_app("app").unwrap();
        s.create_app("other").unwrap();
        const THREADS: usize = 8;
        const PER: usize = 25;
        let got: Vec<u32> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..THREADS)
                .map(|t| {
                    let s = s.clone();
                    sc.spawn(move || {
                        let mut mine = Vec::new();
                        for i in 0..PER {
                            let r = s
                                .next_release("app", |base| {
                                    ReleaseDraft::inherit(base, format!("t{t} i{i}"))
                                })
                                .unwrap();
                            if i % 3 == 0 {
                                s.finish_release("app", r.version, Ok(())).unwrap();
                            }
                            // Interleave another app to exercise key prefixes.
                            deploy(&s, "other", "o");
                            mine.push(r.version);
                        }
                        mine
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let n = (THREADS * PER) as u32;
        assert_eq!(got.len(), n as usize);
        let set: BTreeSet<u32> = got.into_iter().collect();
        assert_eq!(set, (1..=n).collect::<BTreeSet<_>>(), "duplicates or gaps");
        let listed: Vec<u32> = s
            .releases("app")
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(listed, (1..=n).rev().collect::<Vec<_>>());
        assert_eq!(s.releases("other").unwrap().len(), n as usize);
    }

    #[test]
    fn destroy_removes_everything_but_slugs() {
        let (dir, s) = store();
        s.create_app("app").unwrap();
        s.create_app("keep").unwrap();
        let digest = s.put_slug(b"slug").unwrap();
        deploy(&s, "app", &digest);
        s.finish_release("app", 1, Ok(())).unwrap();
        deploy(&s, "keep", &digest);
        s.add_domain("app", "Example.COM").unwrap();
        let b = s.create_build("app").unwrap();
        let log = s.build_log_path(&b.id).unwrap();
        fs::write(&log, "-----> hi\n").unwrap();
        let cache = s.build_cache_dir("app").unwrap();
        fs::create_dir_all(&cache).unwrap();
        let repo = s.git_dir("app").unwrap();
        fs::create_dir_all(&repo).unwrap();

        s.destroy_app("app").unwrap();
        assert!(matches!(s.app("app"), Err(StoreError::NoSuchApp(_))));
        assert!(matches!(
            s.destroy_app("app"),
            Err(StoreError::NoSuchApp(_))
        ));
        assert_eq!(s.domain_owner("example.com").unwrap(), None);
        assert!(!log.exists());
        assert!(!cache.exists());
        assert!(!repo.exists());
        assert!(s.slug_path(&digest).is_some());
        assert_eq!(s.releases("keep").unwrap().len(), 1);
        assert_eq!(s.apps().unwrap().len(), 1);

        // Re-creating starts from scratch.
        s.create_app("app").unwrap();
        assert!(s.releases("app").unwrap().is_empty());
        assert!(s.builds("app").unwrap().is_empty());
        assert_eq!(deploy(&s, "app", &digest).version, 1);
        assert_ne!(s.create_build("app").unwrap().id, b.id);
        s.add_domain("app", "example.com").unwrap();
        drop(dir);
    }

    #[test]
    fn domains_are_unique_and_lowercased() {
        let (_d, s) = store();
        s.create_app("one").unwrap();
        s.create_app("two").unwrap();
        let a = s.add_domain("one", "WWW.Example.com.").unwrap();
        assert_eq!(a.domains, ["www.example.com"]);
        // Idempotent for the owner.
        s.add_domain("one", "www.example.com").unwrap();
        assert_eq!(s.app("one").unwrap().domains.len(), 1);
        match s.add_domain("two", "www.EXAMPLE.com") {
            Err(StoreError::DomainTaken { domain, app }) => {
                assert_eq!(domain, "www.example.com");
                assert_eq!(app, "one");
            }
            other => panic!("{other:?}"),
        }
        assert!(s.app("two").unwrap().domains.is_empty());
        assert_eq!(
            s.domain_owner("www.example.COM").unwrap().as_deref(),
            Some("one")
        );
        assert!(matches!(
            s.add_domain("one", "bad domain"),
            Err(StoreError::InvalidDomain(_))
        ));
        assert!(matches!(
            s.add_domain("one", "-x.com"),
            Err(StoreError::InvalidDomain(_))
        ));
        assert!(matches!(
            s.add_domain("nope", "x.com"),
            Err(StoreError::NoSuchApp(_))
        ));
        assert!(matches!(
            s.remove_domain("two", "www.example.com"),
            Err(StoreError::NoSuchDomain)
        ));
        s.remove_domain("one", "www.example.com").unwrap();
        assert_eq!(s.domain_owner("www.example.com").unwrap(), None);
        s.add_domain("two", "www.example.com").unwrap();
        assert_eq!(
            s.domain_owner("www.example.com").unwrap().as_deref(),
            Some("two")
        );
    }

    #[test]
    fn router_names_and_addresses_are_not_domains() {
        let (_d, s) = store();
        s.create_app("attacker").unwrap();
        for name in [
            "victim.localhost",
            "VICTIM.localhost.",
            "web.victim.localhost",
            "localhost",
            "127.0.0.1",
            "10.0.0.1.",
            "1",
        ] {
            assert!(
                matches!(
                    s.add_domain("attacker", name),
                    Err(StoreError::ReservedDomain { .. })
                ),
                "{name}"
            );
        }
        for name in ["::1", "[::1]", "under_score.com", "a..b", &"x".repeat(64)] {
            assert!(
                matches!(
                    s.add_domain("attacker", name),
                    Err(StoreError::InvalidDomain(_))
                ),
                "{name}"
            );
        }
        assert!(s.app("attacker").unwrap().domains.is_empty());
        // Punycode, digits in labels, single labels are fine.
        for name in [
            "xn--bcher-kva.example",
            "1.example.com",
            "intranet",
            "localhost.example.com",
        ] {
            s.add_domain("attacker", name).unwrap();
        }
    }

    #[test]
    fn builds_lifecycle() {
        let (_d, s) = store();
        s.create_app("app").unwrap();
        assert!(matches!(
            s.create_build("nope"),
            Err(StoreError::NoSuchApp(_))
        ));
        let b1 = s.create_build("app").unwrap();
        let b2 = s.create_build("app").unwrap();
        assert_ne!(b1.id, b2.id);
        assert_eq!(b1.status, BuildStatus::Running);
        let f = s
            .finish_build(
                "app",
                &b1.id,
                Ok(BuildOutput {
                    slug: Some("d".into()),
                    release: Some(1),
                }),
            )
            .unwrap();
        assert_eq!(f.status, BuildStatus::Succeeded);
        assert!(f.finished_at.is_some());
        s.finish_build("app", &b2.id, Err("compile error".into()))
            .unwrap();
        let ids: Vec<_> = s.builds("app").unwrap().into_iter().map(|b| b.id).collect();
        assert_eq!(ids, [b2.id.clone(), b1.id.clone()]);
        assert_eq!(s.build("app", &b1.id).unwrap().release, Some(1));
        assert!(matches!(
            s.finish_build("app", "b999999", Err("x".into())),
            Err(StoreError::NoSuchBuild(_))
        ));
        assert!(s.build_log_path("../../etc/passwd").is_err());
        assert_eq!(
            s.build_log_path(&b1.id).unwrap(),
            s.home().join("builds").join(format!("{}.log", b1.id))
        );
        assert!(s.build_cache_dir("../x").is_err());
    }

    #[test]
    fn a_commit_built_before_is_found_with_its_buildpack() {
        let (_d, s) = store();
        s.create_app("app").unwrap();
        let digest = s.put_slug(b"slug").unwrap();
        let source = |commit: &str, buildpack: Option<&str>| BuildSource {
            commit: Some(commit.into()),
            buildpack: buildpack.map(Into::into),
        };
        let done = |b: &Build, slug: &str| {
            s.finish_build(
                "app",
                &b.id,
                Ok(BuildOutput {
                    slug: Some(slug.into()),
                    release: Some(1),
                }),
            )
            .unwrap()
        };
        let b1 = s.start_build("app", source("c1", None)).unwrap();
        assert_eq!(b1.commit.as_deref(), Some("c1"));
        // Running builds and failed ones are not reused.
        assert_eq!(s.build_of("app", &source("c1", None)).unwrap(), None);
        let failed = s.start_build("app", source("c2", None)).unwrap();
        s.finish_build("app", &failed.id, Err("no".into())).unwrap();
        assert_eq!(s.build_of("app", &source("c2", None)).unwrap(), None);

        let b1 = done(&b1, &digest);
        assert_eq!(s.build_of("app", &source("c1", None)).unwrap(), Some(b1));
        assert_eq!(s.build_of("app", &source("c1", Some("/bp"))).unwrap(), None);
        assert_eq!(s.build_of("app", &BuildSource::default()).unwrap(), None);
        // A slug that is gone cannot be released again.
        let b3 = s.start_build("app", source("c3", None)).unwrap();
        done(&b3, &"0".repeat(64));
        assert_eq!(s.build_of("app", &source("c3", None)).unwrap(), None);
    }

    #[test]
    fn slugs_are_content_addressed() {
        let (_d, s) = store();
        let d1 = s.put_slug(b"hello").unwrap();
        assert_eq!(
            d1,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.put_slug(b"hello").unwrap(), d1);
        let p = s.slug_path(&d1).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert!(p.ends_with(format!("slugs/{d1}.tar.gz")));
        assert!(s.slug_path(&"0".repeat(64)).is_none());
        assert!(s.slug_path("../db").is_none());

        let src = s.home().join("src.tar.gz");
        fs::write(&src, b"hello").unwrap();
        assert_eq!(s.put_slug_file(&src).unwrap(), d1);
        fs::write(&src, b"other").unwrap();
        let d2 = s.put_slug_file(&src).unwrap();
        assert_eq!(fs::read(s.slug_path(&d2).unwrap()).unwrap(), b"other");
        // No temporaries left.
        let names: Vec<_> = fs::read_dir(s.home().join("slugs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let digest;
        {
            let s = Store::open(dir.path()).unwrap();
            s.create_app("web-app").unwrap();
            s.create_app("idle").unwrap();
            digest = s.put_slug(b"slug-bytes").unwrap();
            deploy(&s, "web-app", &digest);
            s.finish_release("web-app", 1, Ok(())).unwrap();
            s.next_release("web-app", |base| {
                let mut d = ReleaseDraft::inherit(base, "Set FOO config vars");
                d.config.insert("FOO".into(), "1".into());
                d
            })
            .unwrap();
            s.finish_release("web-app", 2, Ok(())).unwrap();
            deploy(&s, "web-app", "pending-forever");
            s.update_app("web-app", |a| {
                a.formation.insert("web".into(), 3);
            })
            .unwrap();
            s.add_domain("web-app", "app.example.com").unwrap();
            s.create_build("web-app").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.recover_interrupted().unwrap(), 2);
        let apps = s.apps().unwrap();
        assert_eq!(apps.len(), 2);
        let a = s.app("web-app").unwrap();
        assert_eq!(a.current, Some(2));
        assert_eq!(a.formation["web"], 3);
        assert_eq!(a.domains, ["app.example.com"]);
        let cur = s.current_release("web-app").unwrap().unwrap();
        assert_eq!(cur.version, 2);
        assert_eq!(cur.slug.as_deref(), Some(digest.as_str()));
        assert_eq!(cur.config["FOO"], "1");
        assert!(s.slug_path(&digest).is_some());
        assert_eq!(
            s.domain_owner("app.example.com").unwrap().as_deref(),
            Some("web-app")
        );
        assert!(s.current_release("idle").unwrap().is_none());
        assert!(matches!(
            s.release("web-app", 3).unwrap().status,
            ReleaseStatus::Failed { .. }
        ));
        assert!(matches!(
            s.builds("web-app").unwrap()[0].status,
            BuildStatus::Failed { .. }
        ));
        // Numbering continues after the reopen.
        assert_eq!(deploy(&s, "web-app", &digest).version, 4);
    }

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
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"]["state"], "failed");
        assert_eq!(v["status"]["reason"], "x");
        assert_eq!(v["process_types"][0][0], "web");
        let back: Release = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
