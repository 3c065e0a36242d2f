//! `wpaas server` — the daemon: router for all apps plus the JSON API.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use wpaas_builder::sandbox::Limits;
use wpaas_host::control::builds::{default_max_builds, BuildConfig};
use wpaas_host::control::server::{self, ServerConfig, TlsFiles};
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
    #[arg(long, default_value_t = wpaas_host::control::platform::DEFAULT_MAX_UPLOAD_ENTRIES)]
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
                max_upload_entries: self.max_upload_entries,
                engine: self.engine(),
                max_slug: self.max_slug as u64,
                limits: self.edge.limits(),
                tls: self
                    .tls_cert
                    .zip(self.tls_key)
                    .map(|(cert, key)| TlsFiles { cert, key }),
            },
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
