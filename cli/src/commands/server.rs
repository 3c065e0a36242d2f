//! `wpaas server` — the daemon: router for all apps plus the JSON API.

use std::net::SocketAddr;

use anyhow::Result;
use wpaas_host::control::server::{self, ServerConfig};

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
    #[arg(long, default_value = "256M", value_parser = wpaas_host::runtime::limits::parse_size)]
    max_upload: usize,
    /// The most files, directories and links one deploy upload may hold.
    #[arg(long, default_value_t = wpaas_host::control::platform::DEFAULT_MAX_UPLOAD_ENTRIES)]
    max_upload_entries: u64,
    /// The most bytes of files one build may output (its slug,
    /// uncompressed; e.g. 512M, 1G). A larger output fails the build.
    #[arg(long, default_value = "512M", value_parser = wpaas_host::runtime::limits::parse_size)]
    max_slug: usize,
}

impl Server {
    pub fn run(self) -> Result<()> {
        let home = super::wpaas_home()?;
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
                max_upload_entries: self.max_upload_entries,
                max_slug: self.max_slug as u64,
            },
            |router, api| {
                // Tests and scripts read these lines for the bound ports.
                println!("Router listening on http://{router}");
                println!("API listening on http://{api}");
                println!("State in {}", home.display());
            },
            super::shutdown_signal(),
        ))
    }
}
