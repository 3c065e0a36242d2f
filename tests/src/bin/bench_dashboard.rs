//! The dashboard's requests with many apps: server time of each request a
//! page makes.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_dashboard -- [--apps 1000] [--runs 20]
//! ```
//!
//! Starts a real `wpaas server` (ports 0, temporary `WPAAS_HOME`), creates
//! `--apps` apps through the API and deploys examples/hello to one of
//! them, then times, on a kept-alive loopback connection, every request the
//! dashboard's pages make: the page and its script, the apps list
//! (`/apps` and `/metrics/apps`), an app's overview (`/apps/APP`,
//! `/apps/APP/ps`), activity (`/releases`), config, metrics and builds.
//! Prints median and max per request over `--runs` rounds; the time is
//! measured at the client on loopback, an upper bound of the server's.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use wpaas_tests::{example, Server};

#[derive(Parser, Debug)]
#[command(
    name = "bench_dashboard",
    about = "The dashboard's requests with many apps"
)]
struct Args {
    /// Apps created.
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// Rounds of every request.
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let home = tempfile::tempdir()?;
    let server = Server::start_with(home.path(), &["--no-access-log"])?;
    let src = tempfile::tempdir()?;
    std::fs::copy(example("hello"), src.path().join("hello.wasm"))?;
    let out = server.cli(src.path(), &["deploy", "-a", "hello"]);
    ensure!(out.status.success(), "{}", wpaas_tests::text(&out));
    let created = Instant::now();
    for n in 1..args.apps {
        let response = server
            .api_request(reqwest::Method::POST, "/apps")
            .json(&serde_json::json!({ "name": format!("app-{n:04}") }))
            .send()?;
        ensure!(
            response.status().is_success(),
            "creating app-{n}: {}",
            response.text()?
        );
    }
    println!("{} apps created in {:.1?}", args.apps, created.elapsed());

    let client = reqwest::blocking::Client::builder().no_proxy().build()?;
    let base = format!("http://{}", server.api);
    let paths = [
        "/dashboard",
        "/dashboard/app.js",
        "/apps",
        "/metrics/apps",
        "/apps/hello",
        "/apps/hello/ps",
        "/apps/hello/releases",
        "/apps/hello/config",
        "/apps/hello/metrics",
        "/apps/hello/builds",
    ];
    let mut worst = Duration::ZERO;
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "request", "bytes", "median", "max"
    );
    for path in paths {
        let mut times = Vec::with_capacity(args.runs);
        let mut bytes = 0;
        for _ in 0..args.runs {
            let sent = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .bearer_auth(server.token())
                .send()?;
            ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            bytes = response.bytes()?.len();
            times.push(sent.elapsed());
        }
        times.sort();
        let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
        worst = worst.max(max);
        println!("{path:<24} {bytes:>10} {:>10.2?} {:>10.2?}", median, max);
    }
    println!(
        "slowest request with {} apps: {worst:.1?} (goal: 200 ms)",
        args.apps
    );
    Ok(())
}
