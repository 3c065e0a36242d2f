//! The edges every listener shares (the router's and the API's): one accept
//! loop with connection caps, header-read and idle timeouts, back-off on
//! accept errors, and optional TLS.
//!
//! Lifecycle: once at start the open-files limit is raised
//! ([`raise_open_files_limit`]) and the caps are fitted to it
//! ([`Limits::fit_open_files`]); once per listener [`serve`] runs the
//! accept loop; once per connection a task serves HTTP/1.1 or HTTP/2 and a
//! watchdog closes it when it stalls.

mod conn;
mod ip_slots;
mod listener;
mod throttle;
pub(crate) mod tls;

use std::time::Duration;

pub(crate) use listener::{serve, Edge, Secure};

/// What one listener allows. The defaults are in the README's "Edges"
/// section; `wpaas server` and `wpaas up` set them from flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once. Beyond it new connections wait in the
    /// kernel's backlog while the longest-quiet open one is closed.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 /64); beyond it a
    /// new connection is closed at once. 0: no cap.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's head: from the
    /// connection's start for its first request (TLS handshake included),
    /// from the first byte for later ones.
    pub header_timeout: Duration,
    /// How long a connection may sit between requests, and how long a
    /// response may wait for a client that does not read it.
    pub idle_timeout: Duration,
    /// HTTP/2 streams one connection may have open at once.
    pub h2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 128,
        }
    }
}

/// Descriptors kept free for everything that is not a client connection
/// (the store, logs, modules, build and git pipes).
fn reserved_files(open_files: u64) -> u64 {
    (open_files / 4).max(64)
}

/// The fewest connections a listener gets, however low the limit.
const MIN_CONNECTIONS: usize = 16;

impl Limits {
    /// Lowers `max_connections` so that `listeners` listeners at their cap
    /// stay inside `open_files` descriptors with room for the rest of the
    /// server: a full listener then waits instead of failing accept() with
    /// "Too many open files" (which would also starve file opens).
    pub fn fit_open_files(mut self, open_files: u64, listeners: usize) -> Self {
        let spare = open_files.saturating_sub(reserved_files(open_files));
        let share = usize::try_from(spare / listeners.max(1) as u64).unwrap_or(usize::MAX);
        let fitted = share.max(MIN_CONNECTIONS);
        if fitted < self.max_connections {
            tracing::warn!(
                "the open-files limit is {open_files}: at most {fitted} connections per listener (not {}); raise `ulimit -n` for more",
                self.max_connections
            );
            self.max_connections = fitted;
        }
        self
    }
}

/// Connections the kernel may hold for a listener before it accepts them
/// (the kernel caps it at net.core.somaxconn). The standard library's 128
/// fills within milliseconds when a full listener makes new clients wait,
/// and the clients behind it then wait a second or more for a SYN resend.
const BACKLOG: u32 = 4096;

/// Binds a listener with a deep backlog (and SO_REUSEADDR, so a restarted
/// server gets its port back while old connections linger in TIME_WAIT).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft open-files limit (RLIMIT_NOFILE) to the hard limit, as
/// servers that hold many sockets do, and returns the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            let current =
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            tracing::warn!("could not raise the open-files limit ({err}); it stays {current}");
            current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_the_open_files_limit() {
        let fit = |files, listeners| {
            Limits::default()
                .fit_open_files(files, listeners)
                .max_connections
        };
        assert_eq!(fit(1 << 20, 2), 4096, "a high limit keeps the default");
        assert_eq!(fit(256, 2), 96, "(256 - 64) / 2");
        assert_eq!(fit(4096, 2), 1536, "(4096 - 1024) / 2");
        assert_eq!(fit(64, 2), MIN_CONNECTIONS);
        let asked = Limits {
            max_connections: 10,
            ..Limits::default()
        };
        assert_eq!(asked.fit_open_files(256, 2).max_connections, 10);
    }
}
