//! Per-process resource limits, with the defaults DESIGN.md promises.

use std::time::Duration;

/// Limits applied to every instance of one web process.
///
/// The engine's pooling allocator reserves address space for the largest
/// memory any app may ask for ([`crate::runtime::EngineConfig::max_memory`]);
/// these per-app limits are enforced per store, so apps can differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory (and table growth) one instance may reach.
    pub memory_bytes: usize,
    /// Wall-clock time a request may take before it is cancelled with 504.
    pub request_timeout: Duration,
    /// Requests executing at once; more wait in the queue.
    pub max_concurrency: usize,
    /// Requests allowed to wait for a slot; beyond it the router answers 503.
    pub max_queue: usize,
    /// Largest CGI response (headers + body) a WAGI module may write to
    /// stdout. It is buffered (the headers come first, the status may come
    /// last), under the server-wide budget [`crate::runtime::EngineConfig::buffer_budget`].
    pub max_wagi_output: usize,
    /// Largest request body a guest may receive, components and WAGI alike:
    /// a bigger `Content-Length` is answered 413 before anything runs, and
    /// a body that grows past it while streaming fails with 413.
    pub max_request_body: u64,
    /// Longest the router waits for the next piece of a request body while
    /// the guest is waiting for it; a client that stops sending mid-body is
    /// answered 408 and its slot freed. Separate from (and shorter than)
    /// `request_timeout`, which bounds the whole request.
    pub body_timeout: Duration,
    /// Outgoing `wasi:http` requests one instance may have open at once;
    /// beyond it the guest gets `connection-limit-reached`.
    pub max_outbound: usize,
    /// Entries one instance may hold in its resource table (streams,
    /// fields, requests, pollables…); beyond it the guest traps instead of
    /// growing host memory.
    pub max_resources: usize,
    /// Let outbound `wasi:http` requests reach loopback, private and
    /// link-local addresses. Only for local development: it exposes the
    /// host's own services (the control API) and the LAN to the guest.
    pub allow_private_outbound: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            request_timeout: Duration::from_secs(30),
            max_concurrency: 64,
            max_queue: 256,
            max_wagi_output: 64 << 20,
            max_request_body: 64 << 20,
            body_timeout: Duration::from_secs(10),
            max_outbound: 16,
            max_resources: 10_000,
            allow_private_outbound: false,
        }
    }
}

// The parsers live in the API contract, which the CLI shares.
pub use wpaas_api::parse::{parse_duration, parse_size};
