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

/// Parses a size such as `128M`, `1G`, `512K` or `4096` (bytes).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    // Errors quote the input on one line, whatever it holds.
    let shown = text.escape_debug();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let value: usize = digits
        .parse()
        .map_err(|_| format!("invalid size `{shown}`: expected a number like 128M"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        other => {
            return Err(format!(
                "invalid size unit `{}` in `{shown}`: use K, M or G",
                other.escape_debug()
            ))
        }
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{shown}` is too large"))
}

/// Parses a duration such as `30s`, `500ms`, `2m` or `10` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // Errors quote the input on one line, whatever it holds.
    let shown = text.escape_debug();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration `{shown}`: expected e.g. 30s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration `{shown}` is too large")),
        other => Err(format!(
            "invalid duration unit `{}` in `{shown}`: use ms, s or m",
            other.escape_debug()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("1h").is_err());
    }
}
