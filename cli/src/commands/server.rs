//! `wpaas server` — the daemon: router for all apps plus the JSON API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use wpaas_builder::sandbox::Limits;
use wpaas_host::cluster::Capacity;
use wpaas_host::control::builds::{default_max_builds, BuildConfig};
use wpaas_host::control::config::{ClusterConfig, ServerConfig, TlsFiles};
use wpaas_host::control::server;
use wpaas_host::control::supervisor::Backoff;
use wpaas_host::runtime::limits::parse_duration;
use wpaas_host::runtime::EngineConfig;

use super::edge::EdgeArgs;

/// Run the wpaas server: the router for every app and the JSON API.
#[derive(clap::Args)]
pub struct Server {
    /// Router address (apps answer at http://APP.localhost:PORT).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// API address (the CLI talks to it).
    #[arg(long, default_value = "127.0.0.1:7070")]
    api: SocketAddr,
    /// Log lines kept per app (in memory and in WPAAS_HOME/logs).
    #[arg(long, default_value_t = wpaas_host::logs::DEFAULT_LINES)]
    log_lines: usize,
    /// Do not write an app[router] line per request.
    #[arg(long)]
    no_access_log: bool,
    /// The largest source a deploy may upload or a git push may send
    /// (e.g. 256M, 1G).
    #[arg(long, default_value = "256M", value_parser = wpaas_api::parse::parse_size)]
    max_upload: usize,
    /// Builds that run at once; more wait in line, and their deploy or
    /// push says so (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_builds: Option<u32>,
    /// Memory of each build step, all its processes together (e.g. 4G).
    #[arg(long, default_value = "4G", value_parser = wpaas_api::parse::parse_size)]
    build_memory: usize,
    /// Run build steps WITHOUT the bubblewrap sandbox, as the server's own
    /// user with the server's view of the machine. Unsafe: a build could
    /// read the API token and every app's config. Development only.
    #[arg(long)]
    unsandboxed_builds: bool,
    /// The most files, directories and links one deploy upload may hold.
    #[arg(long, default_value_t = ServerConfig::default().max_upload_entries)]
    max_upload_entries: u64,
    /// Wasm instances alive at once over all apps; a request that finds
    /// the pool full is answered 503 at once.
    #[arg(long, env = "WPAAS_MAX_INSTANCES", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_instances: Option<u32>,
    /// Instances one app may hold at once over all its replicas, its fair
    /// share of the pool (default: a quarter of --max-instances).
    #[arg(long, env = "WPAAS_APP_INSTANCES", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    app_instances: Option<u32>,
    /// Bytes the server holds buffered for guests at once (WAGI responses),
    /// e.g. 256M; past it the response is a 503.
    #[arg(long, env = "WPAAS_BUFFER_BUDGET", value_name = "SIZE",
          value_parser = wpaas_api::parse::parse_size)]
    buffer_budget: Option<usize>,
    /// The most bytes of files one build may output (its slug,
    /// uncompressed; e.g. 512M, 1G). A larger output fails the build.
    #[arg(long, default_value = "512M", value_parser = wpaas_api::parse::parse_size)]
    max_slug: usize,
    /// The most keys one app may keep in its key-value buckets.
    #[arg(long, default_value_t = ServerConfig::default().kv_quotas.max_keys, value_name = "N")]
    kv_max_keys: u64,
    /// The most bytes (keys plus values) one app may keep in its
    /// key-value buckets (e.g. 64M).
    #[arg(long, default_value = "64M", value_name = "SIZE",
          value_parser = wpaas_api::parse::parse_size)]
    kv_max_bytes: usize,
    /// The largest key-value value (e.g. 1M).
    #[arg(long, default_value = "1M", value_name = "SIZE",
          value_parser = wpaas_api::parse::parse_size)]
    kv_max_value: usize,
    /// Keep each app's build cache in DIR/APP instead of
    /// WPAAS_HOME/cache/build/APP. Servers sharing DIR share the caches of
    /// apps of the same name: only for apps that trust each other.
    #[arg(long, env = "WPAAS_BUILD_CACHE_DIR", value_name = "DIR")]
    build_cache_dir: Option<PathBuf>,
    /// Cache compiled code (and its MAC key, DIR.key) in DIR instead of
    /// WPAAS_HOME/cache/compiled; servers of one user may share it.
    #[arg(long, env = "WPAAS_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// How long a crashed worker waits before it runs again; the wait
    /// doubles with each crash in a row (e.g. 500ms, 2s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    restart_backoff: Duration,
    /// The longest wait before a crashed worker runs again.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    max_restart_backoff: Duration,
    /// How often the autoscaler samples each app's load and decides.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    scaler_tick: Duration,

    /// Be a node of the cluster whose etcd answers at URL (several:
    /// comma-separated): apps, releases, builds, domains and app data are
    /// kept there, shared by every node, instead of in WPAAS_HOME. Slugs,
    /// logs and caches stay in WPAAS_HOME. A preview: each node serves its
    /// own processes; placement across nodes is still to come.
    #[arg(
        long,
        env = "WPAAS_CLUSTER",
        value_name = "URL[,URL]",
        value_delimiter = ','
    )]
    cluster: Vec<String>,
    /// The node's name in the cluster (default: the host name); 2-30 of
    /// a-z, 0-9 and -, starting with a letter.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    node: Option<String>,
    /// How long after this node dies its records (its place in the
    /// cluster, its leadership, builds and releases it was making) expire.
    #[arg(long, default_value = "5s", value_parser = parse_duration, requires = "cluster")]
    lease_ttl: Duration,
    /// Replicas this node may run (what the cluster's scheduler may place
    /// on it).
    #[arg(long, default_value_t = Capacity::default().slots, value_name = "N")]
    slots: u32,
    /// Memory this node gives its replicas (e.g. 8G; default: the
    /// machine's).
    #[arg(long, value_name = "SIZE", value_parser = wpaas_api::parse::parse_size)]
    node_memory: Option<usize>,

    // The edges: connection caps, timeouts and TLS.
    #[command(flatten)]
    edge: EdgeArgs,
    /// Serve the API, git and the router over HTTPS with this certificate
    /// chain (PEM, leaf first). Without TLS the API token crosses the
    /// network in clear.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl Server {
    /// The instance pool, each app's share of it and the buffer budget.
    fn engine(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        let max_instances = self.max_instances.unwrap_or(defaults.max_instances);
        EngineConfig {
            max_instances,
            app_instances: self
                .app_instances
                .unwrap_or(max_instances / 4)
                .clamp(1, max_instances),
            buffer_budget: self.buffer_budget.unwrap_or(defaults.buffer_budget),
            ..defaults
        }
    }

    /// The server's settings from the flags (each flag's default is
    /// [`ServerConfig::default`]'s, pinned by a test below).
    fn config(self) -> ServerConfig {
        let engine = self.engine();
        ServerConfig {
            listen: self.listen,
            api: self.api,
            log_lines: self.log_lines,
            access_log: !self.no_access_log,
            max_upload: self.max_upload as u64,
            builds: BuildConfig {
                max_builds: self
                    .max_builds
                    .map_or_else(default_max_builds, |n| n as usize),
                limits: Limits {
                    memory: self.build_memory as u64,
                    ..Limits::default()
                },
                unsandboxed: self.unsandboxed_builds,
            },
            build_cache_dir: self.build_cache_dir,
            max_upload_entries: self.max_upload_entries,
            engine,
            compiled_cache_dir: self.cache_dir,
            max_slug: self.max_slug as u64,
            kv_quotas: wpaas_host::data::Quotas {
                max_keys: self.kv_max_keys,
                max_bytes: self.kv_max_bytes as u64,
                max_value_bytes: self.kv_max_value as u64,
                ..Default::default()
            },
            limits: self.edge.limits(),
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert, key)| TlsFiles { cert, key }),
            restart_backoff: Backoff::new(self.restart_backoff, self.max_restart_backoff),
            scaler_tick: self.scaler_tick,
            cluster: (!self.cluster.is_empty()).then(|| ClusterConfig {
                lease_ttl: self.lease_ttl,
                ..ClusterConfig::new(self.cluster, self.node)
            }),
            capacity: Capacity {
                slots: self.slots,
                memory_bytes: self
                    .node_memory
                    .map_or(Capacity::default().memory_bytes, |m| m as u64),
            },
        }
    }

    pub fn run(self) -> Result<()> {
        let home = crate::home::wpaas_home()?;
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(server::run(
            &home,
            self.config(),
            |router, api| {
                // Tests and scripts read these lines for the bound ports.
                println!("Router listening on {scheme}://{router}");
                println!("API listening on {scheme}://{api}");
                println!("State in {}", home.display());
            },
            crate::signals::shutdown_signal(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: Server,
    }

    /// The defaults live in [`ServerConfig::default`]; the flags' help
    /// repeats them and must say the same.
    #[test]
    fn no_flags_is_the_default_config() {
        let config = Cli::try_parse_from(["wpaas"]).unwrap().server.config();
        let default = ServerConfig::default();
        assert_eq!(config.listen, default.listen);
        assert_eq!(config.api, default.api);
        assert!(config.tls.is_none() && default.tls.is_none());
        assert_eq!(
            format!("{:?}", config.limits),
            format!("{:?}", default.limits)
        );
        assert_eq!(config.log_lines, default.log_lines);
        assert_eq!(config.access_log, default.access_log);
        assert_eq!(config.max_upload, default.max_upload);
        assert_eq!(config.max_upload_entries, default.max_upload_entries);
        assert_eq!(config.max_slug, default.max_slug);
        assert_eq!(config.kv_quotas, default.kv_quotas);
        assert_eq!(
            format!("{:?}", config.builds),
            format!("{:?}", default.builds)
        );
        assert_eq!(config.build_cache_dir, default.build_cache_dir);
        assert_eq!(config.compiled_cache_dir, default.compiled_cache_dir);
        assert_eq!(
            format!("{:?}", config.engine),
            format!("{:?}", default.engine)
        );
        assert_eq!(config.restart_backoff, default.restart_backoff);
        assert_eq!(config.scaler_tick, default.scaler_tick);
        assert_eq!(config.cluster, default.cluster);
    }

    #[test]
    fn cluster_flags_make_a_node() {
        let config = Cli::try_parse_from([
            "wpaas",
            "--cluster",
            "http://10.0.0.1:2379,http://10.0.0.2:2379",
            "--node",
            "n1",
        ])
        .unwrap()
        .server
        .config();
        let cluster = config.cluster.unwrap();
        assert_eq!(
            cluster.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(cluster.node_name().unwrap(), "n1");
        // --node alone means nothing.
        assert!(Cli::try_parse_from(["wpaas", "--node", "n1"]).is_err());
        let bad = ClusterConfig::new(vec!["http://x".into()], Some("N_1".into()));
        assert!(bad.node_name().unwrap_err().contains("invalid node name"));
    }

    #[test]
    fn process_timing_flags_set_the_config() {
        let config = Cli::try_parse_from([
            "wpaas",
            "--restart-backoff",
            "20ms",
            "--max-restart-backoff",
            "80ms",
            "--scaler-tick",
            "10ms",
            "--cache-dir",
            "/c",
            "--build-cache-dir",
            "/b",
        ])
        .unwrap()
        .server
        .config();
        assert_eq!(
            config.restart_backoff,
            Backoff::new(Duration::from_millis(20), Duration::from_millis(80))
        );
        assert_eq!(config.scaler_tick, Duration::from_millis(10));
        assert_eq!(config.compiled_cache_dir, Some(PathBuf::from("/c")));
        assert_eq!(config.build_cache_dir, Some(PathBuf::from("/b")));
    }
}
