//! Every setting of `wpaas server` in one struct: what it means, its
//! default and the flag (or environment variable) that changes it. The
//! CLI builds a [`ServerConfig`] from its flags; the server and the
//! [`Platform`](super::platform::Platform) read their limits from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::builds::BuildConfig;
use super::supervisor::Backoff;
use crate::cluster::Capacity;
use crate::edge::Limits;
use crate::runtime::EngineConfig;

/// How a `wpaas server` runs. [`ServerConfig::default`] is what the server
/// does without flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The router's address; apps answer at `http://APP.localhost:PORT`.
    /// Default `127.0.0.1:8080`; `--listen` (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The API's address (and git's, under `/git/`). Default
    /// `127.0.0.1:7070`; `--api`.
    pub api: SocketAddr,
    /// Serve the router and the API (with git) over HTTPS. Default: none,
    /// plain HTTP; `--tls-cert` and `--tls-key`.
    pub tls: Option<TlsFiles>,
    /// Connection caps and timeouts of each listener, fitted to the
    /// open-files limit at start. Default [`Limits::default`]: 4096
    /// connections, 256 per client address, 10 s to send a request head,
    /// 60 s idle; `--max-connections`, `--max-connections-per-ip`,
    /// `--header-timeout`, `--idle-timeout`.
    pub limits: Limits,
    /// Log lines kept per app, in memory and in `WPAAS_HOME/logs`. Default
    /// [`crate::logs::DEFAULT_LINES`] (10,000); `--log-lines`.
    pub log_lines: usize,
    /// Whether the router writes an `app[router]` line per request.
    /// Default on; `--no-access-log` turns it off.
    pub access_log: bool,
    /// The most bytes a deploy may upload or a `git push` may send.
    /// Default 256 MiB; `--max-upload`.
    pub max_upload: u64,
    /// The most entries (files, directories, links) of one deploy upload.
    /// Default 100,000 ([`wpaas_builder::archive::DEFAULT_MAX_ENTRIES`]);
    /// `--max-upload-entries`.
    pub max_upload_entries: u64,
    /// The most bytes of files one build may output (its slug,
    /// uncompressed). Default 512 MiB; `--max-slug`.
    pub max_slug: u64,
    /// Every app's key-value quotas ([`crate::data::Quotas::default`]:
    /// 100 000 keys, 64 MiB, 1 MiB values); `--kv-max-keys`,
    /// `--kv-max-bytes`, `--kv-max-value`.
    pub kv_quotas: crate::data::Quotas,
    /// Builds at once and the build sandbox. Default
    /// [`BuildConfig::default`]: as many builds as CPUs, 4 GiB per build
    /// step, sandboxed; `--max-builds`, `--build-memory`,
    /// `--unsandboxed-builds`.
    pub builds: BuildConfig,
    /// Where each app's build cache lives (cargo's registry and target
    /// dir, a custom buildpack's `CACHE_DIR`): `DIR/APP`. Default: none,
    /// `WPAAS_HOME/cache/build/APP`; `--build-cache-dir` or
    /// `WPAAS_BUILD_CACHE_DIR`. Servers given the same directory share the
    /// cache of apps of the same name (a test suite's servers), so give it
    /// only to servers whose apps trust each other; a build still sees
    /// only its own app's directory.
    pub build_cache_dir: Option<PathBuf>,
    /// The instance pool, each app's share of it and the buffer budget.
    /// Default [`EngineConfig::default`]: 1000 instances, a quarter per
    /// app, 256 MiB of buffers; `--max-instances`, `--app-instances`,
    /// `--buffer-budget` (or `WPAAS_MAX_INSTANCES`, `WPAAS_APP_INSTANCES`,
    /// `WPAAS_BUFFER_BUDGET`).
    pub engine: EngineConfig,
    /// Where compiled code (`.cwasm`) is cached, with its MAC key beside
    /// it (`DIR.key`). Default: none, `WPAAS_HOME/cache/compiled`;
    /// `--cache-dir` or `WPAAS_CACHE_DIR`. Servers given the same
    /// directory share the compiled code and the key, which is safe when
    /// they run as one user: whoever can read the key could write each
    /// server's own WPAAS_HOME too, and builds never see either.
    pub compiled_cache_dir: Option<PathBuf>,
    /// How long a crashed long-running process waits before it runs
    /// again. Default [`Backoff::default`]: 500 ms, doubling with each
    /// crash in a row up to 5 minutes; `--restart-backoff` and
    /// `--max-restart-backoff`.
    pub restart_backoff: Backoff,
    /// How often the autoscaler samples the load and decides. Default
    /// 100 ms; `--scaler-tick`.
    pub scaler_tick: Duration,
    /// The cluster this server is a node of. Default: none, a single node
    /// whose records are in `WPAAS_HOME/db` (sled); `--cluster URL[,URL]`
    /// and `--node NAME` (or `WPAAS_CLUSTER`).
    pub cluster: Option<ClusterConfig>,
    /// What this node offers its replicas, as the cluster's scheduler
    /// sees it. Default [`Capacity::default`]: 100 replicas, the
    /// machine's memory; `--slots`, `--node-memory`.
    pub capacity: Capacity,
}

/// A node of a cluster: the records (apps, releases, builds, domains) and
/// app data are in etcd, shared by every node; slugs, logs and caches stay
/// under each node's `WPAAS_HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// etcd's client URLs (`http://host:2379`).
    pub endpoints: Vec<String>,
    /// The node's name; `None`: the host name ([`ClusterConfig::node_name`]).
    pub node: Option<String>,
    /// The TTL of the node's etcd lease: what it holds (pending releases,
    /// running builds) is freed this long after the node dies. Default
    /// [`crate::etcd::DEFAULT_LEASE_TTL`] (5 s).
    pub lease_ttl: Duration,
}

/// Where a cluster's keys live in etcd.
pub const CLUSTER_PREFIX: &str = "/wpaas/";

impl ClusterConfig {
    /// A node of the cluster at `endpoints`, named `node` (or after the host).
    pub fn new(endpoints: Vec<String>, node: Option<String>) -> Self {
        Self {
            endpoints,
            node,
            lease_ttl: crate::etcd::DEFAULT_LEASE_TTL,
        }
    }

    /// The node's name: `--node`, else the host name (its first label,
    /// lower-cased). Either must be valid as an app name is (2-30 of
    /// lowercase letters, digits and dashes, starting with a letter).
    pub fn node_name(&self) -> Result<String, String> {
        let (name, given) = match &self.node {
            Some(node) => (node.clone(), true),
            None => (host_name(), false),
        };
        match super::store::validate_app_name(&name) {
            Ok(()) => Ok(name),
            Err(_) if given => Err(format!(
                "invalid node name {name:?}: use 2-30 characters, lowercase letters, digits and dashes, starting with a letter"
            )),
            Err(_) => Err(format!(
                "the host name {name:?} is not a valid node name; name the node with --node NAME (2-30 of a-z, 0-9 and -, starting with a letter)"
            )),
        }
    }
}

/// This machine's host name: its first label, lower-cased.
pub(crate) fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    raw.trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A PEM certificate chain (leaf first) and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The largest deploy upload or git push by default.
const DEFAULT_MAX_UPLOAD: u64 = 256 << 20;

/// The largest build output by default.
const DEFAULT_MAX_SLUG: u64 = 512 << 20;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api: SocketAddr::from(([127, 0, 0, 1], 7070)),
            tls: None,
            limits: Limits::default(),
            log_lines: crate::logs::DEFAULT_LINES,
            access_log: true,
            max_upload: DEFAULT_MAX_UPLOAD,
            max_upload_entries: wpaas_builder::archive::DEFAULT_MAX_ENTRIES,
            max_slug: DEFAULT_MAX_SLUG,
            kv_quotas: crate::data::Quotas::default(),
            builds: BuildConfig::default(),
            build_cache_dir: None,
            engine: EngineConfig::default(),
            compiled_cache_dir: None,
            restart_backoff: Backoff::default(),
            scaler_tick: Duration::from_millis(100),
            cluster: None,
            capacity: Capacity::default(),
        }
    }
}

impl ServerConfig {
    /// The compiled-code cache directory of a server in `home`.
    pub fn compiled_cache(&self, home: &crate::home::Home) -> PathBuf {
        self.compiled_cache_dir
            .clone()
            .unwrap_or_else(|| home.compiled_cache())
    }
}
