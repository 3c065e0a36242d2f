//! The `/metrics` page: the router's and builds' counters, plus what is
//! read from the platform when the page is asked for (replicas, requests
//! in flight, restarts, log lines, the instance pool, memory).

use super::platform::{is_long_running, Platform};
use crate::metrics::{resident_memory, Page};

/// The whole page in Prometheus's text format.
pub fn render(platform: &Platform) -> String {
    let mut page = Page::new();
    platform.metrics().render(&mut page);
    processes(platform, &mut page);

    let stats = platform.logs().stats();
    page.family(
        "wpaas_log_lines_total",
        "counter",
        "Lines written to the app's log.",
    );
    for (app, s) in &stats {
        page.sample("wpaas_log_lines_total", &[("app", app)], s.lines as f64);
    }
    page.family(
        "wpaas_log_lines_dropped_total",
        "counter",
        "Log lines that could not be written to the log file (the writer fell behind).",
    );
    for (app, s) in &stats {
        page.sample(
            "wpaas_log_lines_dropped_total",
            &[("app", app)],
            s.dropped as f64,
        );
    }

    let runtime = platform.runtime();
    page.family(
        "wpaas_compiled_code_cache_total",
        "counter",
        "Loads of compiled code, by whether the cache had it.",
    );
    let cache = runtime.cache();
    page.sample(
        "wpaas_compiled_code_cache_total",
        &[("result", "hit")],
        cache.hits() as f64,
    );
    page.sample(
        "wpaas_compiled_code_cache_total",
        &[("result", "miss")],
        cache.misses() as f64,
    );
    if let Some(pool) = runtime.pool_in_use() {
        page.family(
            "wpaas_pooling_allocator_in_use",
            "gauge",
            "Slots of the pooling instance allocator in use, by kind.",
        );
        for (kind, n) in pool {
            page.sample(
                "wpaas_pooling_allocator_in_use",
                &[("kind", kind)],
                n as f64,
            );
        }
    }
    if let Some(rss) = resident_memory() {
        page.family(
            "wpaas_resident_memory_bytes",
            "gauge",
            "Resident memory of the wpaas server process.",
        );
        page.sample("wpaas_resident_memory_bytes", &[], rss as f64);
    }
    page.into_text()
}

/// Replicas (wanted and running), requests in flight and restarts per app
/// and process type of the current release.
fn processes(platform: &Platform, page: &mut Page) {
    let store = platform.store();
    let mut rows = Vec::new();
    for app in store.apps().unwrap_or_default() {
        let Ok(Some(release)) = store.current_release(&app.name) else {
            continue;
        };
        for (kind, _) in &release.process_types {
            if kind == "web" {
                let web = platform.web_status(&app.name).unwrap_or_default();
                let in_flight: usize = web.iter().map(|r| r.in_flight).sum();
                let restarts: u64 = web.iter().map(|r| u64::from(r.restarts)).sum();
                rows.push((
                    app.name.clone(),
                    kind.clone(),
                    web.len(),
                    in_flight,
                    restarts,
                ));
            } else if is_long_running(kind) {
                let running = platform.supervisor().status(&app.name, kind);
                let restarts: u64 = running.iter().map(|p| u64::from(p.restarts)).sum();
                rows.push((app.name.clone(), kind.clone(), running.len(), 0, restarts));
            }
        }
    }
    page.family(
        "wpaas_replicas",
        "gauge",
        "Running replicas per process type.",
    );
    for (app, kind, n, ..) in &rows {
        page.sample(
            "wpaas_replicas",
            &[("app", app), ("process_type", kind)],
            *n as f64,
        );
    }
    page.family(
        "wpaas_http_requests_in_flight",
        "gauge",
        "Requests running or queued on the web replicas.",
    );
    for (app, kind, _, in_flight, _) in rows.iter().filter(|r| r.1 == "web") {
        page.sample(
            "wpaas_http_requests_in_flight",
            &[("app", app), ("process_type", kind)],
            *in_flight as f64,
        );
    }
    page.family(
        "wpaas_replica_restarts",
        "gauge",
        "Restarts of the running replicas after exits, traps or repeated crashes.",
    );
    for (app, kind, _, _, restarts) in &rows {
        page.sample(
            "wpaas_replica_restarts",
            &[("app", app), ("process_type", kind)],
            *restarts as f64,
        );
    }
}
