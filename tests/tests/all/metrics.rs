//! `GET /metrics`: valid Prometheus text (checked by the test library's
//! strict parser of the exposition format), with counters that match the
//! requests sent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wpaas_api::ps::Recent;
use wpaas_tests::prometheus::{parse_exposition, value, Family};
use wpaas_tests::{client, eventually, example, try_eventually, Server};

fn scrape(server: &Server) -> BTreeMap<String, Family> {
    let response = server
        .api_request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().unwrap();
    parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Scrapes until `check` holds (the router counts a request when its
/// response has been sent, a moment after the client has it); after 10 s,
/// the last scrape, for the caller's assertions to explain.
fn scrape_until(
    server: &Server,
    mut check: impl FnMut(&BTreeMap<String, Family>) -> bool,
) -> BTreeMap<String, Family> {
    let mut last = None;
    let result = try_eventually(Duration::from_secs(10), || {
        let families = scrape(server);
        if check(&families) {
            Ok(families)
        } else {
            last = Some(families);
            Err(String::new())
        }
    });
    result.unwrap_or_else(|_| last.expect("scraped at least once"))
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_the_requests_sent() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "metered"]);
    assert!(out.status.success());

    let unauthorized = client()
        .get(format!("http://{}/metrics", server.api))
        .send()
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    // 40 answered 200 from 4 connections at once, 2 × 404, 1 trap.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10 {
                    assert_eq!(server.get("metered", "/").status(), 200);
                }
            });
        }
    });
    for _ in 0..2 {
        assert_eq!(server.get("metered", "/nope").status(), 404);
    }
    assert_eq!(server.get("metered", "/trap").status(), 500);

    let requests = |families: &BTreeMap<String, Family>, class: &str| {
        value(
            families,
            "wpaas_http_requests_total",
            &[("app", "metered"), ("status", class)],
        )
    };
    let families = scrape_until(&server, |f| requests(f, "5xx") == 1.0);
    assert_eq!(requests(&families, "2xx"), 40.0);
    assert_eq!(requests(&families, "4xx"), 2.0);
    assert_eq!(requests(&families, "5xx"), 1.0);
    assert_eq!(requests(&families, "1xx") + requests(&families, "3xx"), 0.0);
    let latency = |families: &BTreeMap<String, Family>| {
        value(
            families,
            "wpaas_http_request_duration_seconds_count",
            &[("app", "metered")],
        )
    };
    assert_eq!(latency(&families), 43.0);
    let app = [("app", "metered")];
    assert_eq!(value(&families, "wpaas_instance_traps_total", &app), 1.0);
    assert_eq!(
        value(&families, "wpaas_instances_started_total", &app),
        43.0
    );
    assert_eq!(value(&families, "wpaas_instance_timeouts_total", &app), 0.0);
    assert_eq!(
        value(
            &families,
            "wpaas_replicas",
            &[("app", "metered"), ("process_type", "web")]
        ),
        1.0
    );
    assert_eq!(value(&families, "wpaas_http_requests_in_flight", &app), 0.0);
    assert_eq!(
        value(
            &families,
            "wpaas_build_duration_seconds_count",
            &[("app", "metered"), ("outcome", "succeeded")]
        ),
        1.0
    );
    assert!(value(&families, "wpaas_log_lines_total", &app) >= 43.0);
    assert_eq!(value(&families, "wpaas_log_lines_dropped_total", &app), 0.0);
    assert!(value(&families, "wpaas_resident_memory_bytes", &[]) > 1e6);
    assert!(families.contains_key("wpaas_pooling_allocator_in_use"));

    // No web processes: H14, 503, no instance.
    let out = server.cli(src.path(), &["ps:scale", "web=0", "-a", "metered"]);
    assert!(out.status.success());
    assert_eq!(server.get("metered", "/").status(), 503);
    let families = scrape_until(&server, |f| requests(f, "5xx") == 2.0);
    assert_eq!(requests(&families, "5xx"), 2.0);
    assert_eq!(
        value(
            &families,
            "wpaas_router_errors_total",
            &[("app", "metered"), ("code", "H14")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &families,
            "wpaas_router_errors_total",
            &[("app", "metered"), ("code", "H13")]
        ),
        1.0
    );
    assert_eq!(
        value(&families, "wpaas_instances_started_total", &app),
        43.0
    );
    assert_eq!(
        value(
            &families,
            "wpaas_replicas",
            &[("app", "metered"), ("process_type", "web")]
        ),
        0.0
    );
}

/// `wpaas ps --json`'s last minute of web traffic.
fn recent(server: &Server, app: &str) -> Recent {
    let ps = server.ps(app);
    let web = ps.iter().find(|p| p.kind == "web").expect("a web type");
    web.recent.clone().expect("web has recent traffic numbers")
}

#[test]
fn ps_shows_the_last_minute_of_web_requests() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "busy"])
        .status
        .success());
    let idle = recent(&server, "busy");
    assert_eq!(idle.requests, 0, "{idle:?}");
    assert_eq!(idle.p50_ms, None, "{idle:?}");

    // 36 fast answers, 2 slow ones, 2 errors (500): p50 is fast, p99 the
    // slowest, 5 % errors.
    let started = Instant::now();
    for _ in 0..36 {
        assert_eq!(server.get("busy", "/").status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(server.get("busy", "/sleep?ms=400").status(), 200);
        assert_eq!(server.get("busy", "/error").status(), 500);
    }
    let took = started.elapsed().as_secs_f64();
    let recent = eventually(Duration::from_secs(10), || {
        let recent = recent(&server, "busy");
        if recent.requests == 40 {
            Ok(recent)
        } else {
            Err(format!("40 requests in ps: {recent:?}"))
        }
    });
    assert_eq!(recent.errors, 2, "{recent:?}");
    assert!((recent.error_rate - 0.05).abs() < 1e-9, "{recent:?}");
    let (p50, p99) = (recent.p50_ms.unwrap(), recent.p99_ms.unwrap());
    assert!(p50 < 100.0, "{recent:?}");
    assert!((360.0..=480.0).contains(&p99), "{recent:?}");
    // The rate is over the time the window covers: the server has run
    // longer than the requests took, and less than a minute.
    let window = recent.window_seconds;
    assert!(window >= took && window <= 60.0, "{recent:?}");
    assert!(
        (recent.requests_per_second - 40.0 / window).abs() < 0.05 * 40.0 / window,
        "{recent:?}"
    );

    let out = server.cli(src.path(), &["ps", "-a", "busy"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("last "))
        .unwrap_or_else(|| panic!("no recent line: {text}"));
    assert!(line.contains(" req/s  p50 "), "{line}");
    assert!(line.ends_with("errors 5.0% (40 requests)"), "{line}");
}
