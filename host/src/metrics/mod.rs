//! Metrics in Prometheus's text format (`GET /metrics` on the API port).
//!
//! Counting is on the request path, so it is atomics only: the router's
//! [`Observer`] finds the app's counters in a lock-free map (an `ArcSwap`,
//! written once per app) and bumps them. Everything that is state rather
//! than an event — replicas, requests in flight, memory — is read when
//! the page is rendered.

mod recent;
mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::router::{Access, Observer};
pub(crate) use recent::{Recent, Summary};
pub(crate) use text::{Page, CONTENT_TYPE};

/// Upper bounds (seconds) of the request latency buckets.
pub(crate) const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds (seconds) of the build duration buckets.
pub(crate) const BUILD_BUCKETS: [f64; 8] = [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0];

/// A histogram of durations with fixed buckets.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Not cumulative; one more than `bounds` (the +Inf bucket).
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Empty, over `bounds` (ascending, in seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub(crate) fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last is +Inf), and the sum in seconds.
    pub(crate) fn snapshot(&self) -> (Vec<(f64, u64)>, f64) {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, count) in self.counts.iter().enumerate() {
            running += count.load(Ordering::Relaxed);
            buckets.push((
                self.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                running,
            ));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, sum)
    }
}

/// Router error codes counted per app.
const CODES: [&str; 9] = [
    "H10", "H11", "H12", "H13", "H14", "H18", "H19", "H27", "H80",
];

/// One app's request counters.
pub(crate) struct AppCounters {
    /// By status class: index 0 is 1xx … 4 is 5xx.
    by_class: [AtomicU64; 5],
    /// By router error code, in the order of `CODES`.
    by_code: [AtomicU64; CODES.len()],
    /// Requests a replica ran (each in a fresh instance).
    instances: AtomicU64,
    bytes: AtomicU64,
    latency: Histogram,
    /// The last minute, for `wpaas ps`.
    recent: Recent,
    /// The last hour, for the dashboard's plots.
    hour: Recent,
}

impl AppCounters {
    fn new() -> Self {
        Self {
            by_class: Default::default(),
            by_code: Default::default(),
            instances: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            latency: Histogram::new(&LATENCY_BUCKETS),
            recent: Recent::new(),
            hour: Recent::with(recent::HOUR),
        }
    }
}

/// A build's outcome and duration.
struct Builds {
    succeeded: Histogram,
    failed: Histogram,
}

/// The counters of requests and builds, per app, rendered for
/// `GET /metrics` in Prometheus's text format (beside the host's own
/// gauges, which are read when the page is rendered).
pub struct Metrics {
    apps: ArcSwap<HashMap<String, Arc<AppCounters>>>,
    builds: ArcSwap<HashMap<String, Arc<Builds>>>,
    /// The clock the recent windows are kept against.
    origin: Instant,
    /// `origin` as Unix seconds, for the series' times.
    origin_unix: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Finds `key` in a copy-on-write map, adding `make()` the first time.
fn entry<T>(map: &ArcSwap<HashMap<String, Arc<T>>>, key: &str, make: impl Fn() -> T) -> Arc<T> {
    if let Some(found) = map.load().get(key) {
        return found.clone();
    }
    let mut found = None;
    map.rcu(|old| {
        let mut new = HashMap::clone(old);
        found = Some(
            new.entry(key.to_string())
                .or_insert_with(|| Arc::new(make()))
                .clone(),
        );
        new
    });
    found.expect("rcu ran")
}

impl Metrics {
    /// No counts yet.
    pub(crate) fn new() -> Self {
        Self {
            apps: ArcSwap::default(),
            builds: ArcSwap::default(),
            origin: Instant::now(),
            origin_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// `app`'s web requests over the last minute.
    pub(crate) fn recent(&self, app: &str) -> Summary {
        let now = self.origin.elapsed();
        match self.apps.load().get(app) {
            Some(counters) => counters.recent.summary(now),
            None => Recent::new().summary(now),
        }
    }

    /// `app`'s web requests over the last hour, a point a minute.
    pub(crate) fn series(&self, app: &str) -> wpaas_api::ps::Series {
        let now = self.origin.elapsed();
        let points = match self.apps.load().get(app) {
            Some(counters) => counters.hour.series(now, self.origin_unix),
            None => Recent::with(recent::HOUR).series(now, self.origin_unix),
        };
        wpaas_api::ps::Series {
            slot_seconds: recent::HOUR.slot_secs,
            points,
        }
    }

    /// Notes how many web replicas `app` runs now (sampled).
    pub(crate) fn note_replicas(&self, app: &str, replicas: u32) {
        self.app(app)
            .hour
            .note_replicas(self.origin.elapsed(), replicas);
    }

    /// `app`'s request counters.
    pub(crate) fn app(&self, app: &str) -> Arc<AppCounters> {
        entry(&self.apps, app, AppCounters::new)
    }

    /// Records a finished build.
    pub(crate) fn build_finished(&self, app: &str, took: Duration, succeeded: bool) {
        let builds = entry(&self.builds, app, || Builds {
            succeeded: Histogram::new(&BUILD_BUCKETS),
            failed: Histogram::new(&BUILD_BUCKETS),
        });
        if succeeded {
            builds.succeeded.observe(took);
        } else {
            builds.failed.observe(took);
        }
    }

    /// Forgets an app (destroyed).
    pub(crate) fn remove(&self, app: &str) {
        self.apps.rcu(|old| {
            let mut new = HashMap::clone(old);
            new.remove(app);
            new
        });
        self.builds.rcu(|old| {
            let mut new = HashMap::clone(old);
            new.remove(app);
            new
        });
    }

    /// Writes the counters kept here to `page`.
    pub(crate) fn render(&self, page: &mut Page) {
        let mut apps: Vec<(String, Arc<AppCounters>)> = self
            .apps
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        apps.sort_by(|a, b| a.0.cmp(&b.0));

        page.family(
            "wpaas_http_requests_total",
            "counter",
            "Requests routed to an app, by response status class.",
        );
        for (app, c) in &apps {
            for (i, count) in c.by_class.iter().enumerate() {
                let class = format!("{}xx", i + 1);
                page.sample(
                    "wpaas_http_requests_total",
                    &[("app", app), ("process_type", "web"), ("status", &class)],
                    count.load(Ordering::Relaxed) as f64,
                );
            }
        }
        page.family(
            "wpaas_router_errors_total",
            "counter",
            "Requests the router answered itself, by Heroku error code (H12 timeout, H13 crash, H14 no web processes…).",
        );
        for (app, c) in &apps {
            for (code, count) in CODES.iter().zip(&c.by_code) {
                page.sample(
                    "wpaas_router_errors_total",
                    &[("app", app), ("code", code)],
                    count.load(Ordering::Relaxed) as f64,
                );
            }
        }
        page.family(
            "wpaas_instances_started_total",
            "counter",
            "Wasm instances started for requests (one per request a replica ran).",
        );
        page.family(
            "wpaas_instance_traps_total",
            "counter",
            "Requests whose instance trapped or gave no valid response (H13).",
        );
        page.family(
            "wpaas_instance_timeouts_total",
            "counter",
            "Requests whose instance ran past the time limit (H12).",
        );
        page.family(
            "wpaas_http_response_bytes_total",
            "counter",
            "Response body bytes sent.",
        );
        for (app, c) in &apps {
            let labels = [("app", app.as_str()), ("process_type", "web")];
            let code = |want: &str| {
                let i = CODES.iter().position(|c| *c == want).expect("known code");
                c.by_code[i].load(Ordering::Relaxed) as f64
            };
            let instances = c.instances.load(Ordering::Relaxed) as f64;
            page.sample("wpaas_instances_started_total", &labels, instances);
            page.sample("wpaas_instance_traps_total", &labels, code("H13"));
            page.sample("wpaas_instance_timeouts_total", &labels, code("H12"));
            let bytes = c.bytes.load(Ordering::Relaxed) as f64;
            page.sample("wpaas_http_response_bytes_total", &labels, bytes);
        }
        page.family(
            "wpaas_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to the end of its response.",
        );
        for (app, c) in &apps {
            page.histogram(
                "wpaas_http_request_duration_seconds",
                &[("app", app), ("process_type", "web")],
                &c.latency,
            );
        }

        let mut builds: Vec<(String, Arc<Builds>)> = self
            .builds
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builds.sort_by(|a, b| a.0.cmp(&b.0));
        page.family(
            "wpaas_build_duration_seconds",
            "histogram",
            "How long builds took (upload to release or failure), by outcome.",
        );
        for (app, b) in &builds {
            for (outcome, histogram) in [("succeeded", &b.succeeded), ("failed", &b.failed)] {
                page.histogram(
                    "wpaas_build_duration_seconds",
                    &[("app", app), ("outcome", outcome)],
                    histogram,
                );
            }
        }
    }
}

impl Observer for Metrics {
    fn observe(&self, access: &Access) {
        let counters = self.app(&access.app);
        let class = (access.status / 100).clamp(1, 5) as usize - 1;
        counters.by_class[class].fetch_add(1, Ordering::Relaxed);
        if let Some(code) = access.code {
            if let Some(i) = CODES.iter().position(|c| *c == code) {
                counters.by_code[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        // A replica ran it: it answered, or it crashed / timed out there.
        if access.dyno.is_some() || matches!(access.code, Some("H12" | "H13")) {
            counters.instances.fetch_add(1, Ordering::Relaxed);
        }
        counters.bytes.fetch_add(access.bytes, Ordering::Relaxed);
        counters.latency.observe(access.service);
        let now = self.origin.elapsed();
        counters.recent.record(now, access.service, access.status);
        counters.hour.record(now, access.service, access.status);
    }
}

/// The process's resident memory in bytes (Linux: /proc/self/status).
pub(crate) fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(1));
        let (buckets, sum) = h.snapshot();
        assert_eq!(buckets, [(0.01, 1), (0.1, 2), (f64::INFINITY, 3)]);
        assert!((sum - 1.055).abs() < 1e-9);
    }
}
