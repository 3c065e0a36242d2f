//! Router throughput with the access log on vs off: `wpaas server` serving
//! examples/hello (deployed through the CLI), loaded with `wrk` through the
//! router (`Host: hello.localhost`), once with an `app[router]` line per
//! request and once with `--no-access-log` (metrics stay on in both).
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_logs -- [--duration 10] [--connections 32] [--threads 2] [--rounds 2]
//! ```
//!
//! Rounds alternate on/off so drift (thermal, other load) hits both; each
//! run gets a fresh WPAAS_HOME and a 2-second warm-up. Prints req/s, p50
//! and p99 per run and the median ratio, and writes
//! `target/bench/logs.json`.

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;
use wpaas_tests::{example, workspace_root, Server};

#[derive(Parser, Debug)]
#[command(
    name = "bench_logs",
    about = "router throughput with access logging on vs off"
)]
struct Args {
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 10)]
    duration: u32,
    /// wrk connections (-c).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// wrk threads (-t).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// on/off pairs.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
}

#[derive(Debug, Clone)]
struct Run {
    access_log: bool,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    log_lines: f64,
    dropped: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if Command::new("wrk").arg("-v").output().is_err() {
        bail!("wrk is not installed (apt-get install -y wrk)");
    }
    println!("building wpaas and the guest examples…");
    let hello = example("hello");
    let mut runs = Vec::new();
    for round in 0..args.rounds {
        for access_log in [true, false] {
            let run = measure(&args, &hello, access_log)
                .with_context(|| format!("round {round}, access log {access_log}"))?;
            println!(
                "access log {:3}: {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  ({} log lines, {} dropped from the file)",
                if access_log { "on" } else { "off" },
                run.requests_per_sec,
                run.p50_ms,
                run.p99_ms,
                run.log_lines,
                run.dropped
            );
            runs.push(run);
        }
    }
    let median = |on: bool| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|r| r.access_log == on)
            .map(|r| r.requests_per_sec)
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(true), median(false));
    println!(
        "\nmedian: on {on:.0} req/s, off {off:.0} req/s: logging costs {:.1}% of throughput",
        (1.0 - on / off) * 100.0
    );
    let out = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let report = json!({
        "wrk": format!("wrk -t {} -c {} -d {}s --latency -H 'Host: hello.localhost'", args.threads, args.connections, args.duration),
        "median_rps": { "access_log_on": on, "access_log_off": off, "ratio": on / off },
        "runs": runs.iter().map(|r| json!({
            "access_log": r.access_log,
            "requests_per_sec": r.requests_per_sec,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "log_lines": r.log_lines,
            "log_lines_dropped": r.dropped,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        out.join("logs.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("wrote {}", out.join("logs.json").display());
    Ok(())
}

fn measure(args: &Args, hello: &std::path::Path, access_log: bool) -> Result<Run> {
    let home = tempfile::tempdir()?;
    let src = tempfile::tempdir()?;
    std::fs::copy(hello, src.path().join("hello.wasm"))?;
    let extra: &[&str] = if access_log {
        &[]
    } else {
        &["--no-access-log"]
    };
    let server = Server::start_with(home.path(), extra)?;
    let out = server.cli(src.path(), &["deploy", "-a", "hello"]);
    if !out.status.success() {
        bail!("deploy failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let url = format!("http://{}/", server.router);
    wrk(args, &url, 2)?;
    let text = wrk(args, &url, args.duration)?;
    let metric = |name: &str| -> f64 {
        let token = std::fs::read_to_string(home.path().join("token")).unwrap_or_default();
        let page = wpaas_tests::client()
            .get(format!("http://{}/metrics", server.api))
            .bearer_auth(token.trim())
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        page.lines()
            .find(|l| l.starts_with(&format!("{name}{{app=\"hello\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let (log_lines, dropped) = (
        metric("wpaas_log_lines_total"),
        metric("wpaas_log_lines_dropped_total"),
    );
    server.kill();
    let (requests_per_sec, p50_ms, p99_ms) = parse(&text)?;
    Ok(Run {
        access_log,
        requests_per_sec,
        p50_ms,
        p99_ms,
        log_lines,
        dropped,
    })
}

fn wrk(args: &Args, url: &str, seconds: u32) -> Result<String> {
    let out = Command::new("wrk")
        .args(["-t", &args.threads.to_string()])
        .args(["-c", &args.connections.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .args(["--latency", "-H", "Host: hello.localhost", url])
        .output()
        .context("could not run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}");
    }
    if text.contains("Non-2xx") {
        bail!("non-2xx responses:\n{text}");
    }
    Ok(text)
}

/// req/s, p50 ms, p99 ms from `wrk --latency`.
fn parse(text: &str) -> Result<(f64, f64, f64)> {
    let ms = |v: &str| -> Option<f64> {
        let (number, factor) = if let Some(n) = v.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = v.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = v.strip_suffix('s') {
            (n, 1000.0)
        } else {
            return None;
        };
        number.parse::<f64>().ok().map(|n| n * factor)
    };
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(v)) => p50 = ms(v),
            (Some("99%"), Some(v)) => p99 = ms(v),
            _ => {}
        }
    }
    match (rps, p50, p99) {
        (Some(r), Some(a), Some(b)) => Ok((r, a, b)),
        _ => bail!("could not read wrk's output:\n{text}"),
    }
}
