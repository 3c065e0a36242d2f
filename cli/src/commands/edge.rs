//! The listener flags `wpaas server` and `wpaas up` share.

use std::time::Duration;

use wpaas_api::parse::parse_duration;
use wpaas_host::edge::Limits;

/// Connection caps and timeouts of each listener.
#[derive(clap::Args, Clone)]
pub struct EdgeArgs {
    /// Connections open at once per listener (lowered to fit the open-files
    /// limit). When full, the connection quiet the longest is closed for a
    /// new one; busy ones are never closed.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Connections open at once from one client address (an IPv6 /64);
    /// more are closed at once. 0: no cap (behind a proxy every client has
    /// the proxy's address).
    #[arg(long, default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// How long a client may take to send a request's line and headers
    /// (and the TLS handshake); slower connections are closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests, and
    /// how long a response may wait for a client that does not read it.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,
}

impl EdgeArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            ..Limits::default()
        }
    }
}
