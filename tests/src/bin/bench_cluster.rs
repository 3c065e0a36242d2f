//! A three-node cluster on loopback: forwarding cost, deploy reach and
//! failover time.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_cluster -- [--duration 5] [--connections 16] [--runs 3]
//! ```
//!
//! Starts Debian's etcd (temporary data dir) and three `wpaas server
//! --cluster` nodes (`--lease-ttl 2s`), deploys examples/hello through n1
//! and measures, in one run:
//!
//! * **forwarded vs local**: `web=1` (placed on n1); wrk through n1, which
//!   serves it, then through n3, which forwards every request to n1.
//!   Prints both and the ratio.
//! * **deploy to serving everywhere**: `web=3` (one replica per node);
//!   from the start of `wpaas config:set` on n1 until each of the three
//!   routers answers with the new value — every node has fetched nothing
//!   new (same slug) but loaded the new release. Also a first deploy of a
//!   new slug, which each node fetches from n1.
//! * **failover**: `web=2` (n1, n2); `kill -9` of n1 while a client on n3
//!   sends requests one after another; the time until the placement has
//!   moved web.1 to a live node, and how many requests failed meanwhile.
//!
//! Writes `target/bench/cluster.json`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use serde_json::json;
use wpaas_tests::etcd::EtcdServer;
use wpaas_tests::load::{ensure_wrk, Load};
use wpaas_tests::{example, workspace_root, Server};

#[derive(Parser, Debug)]
#[command(name = "bench_cluster", about = "Three wpaas nodes on one etcd")]
struct Args {
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 5)]
    duration: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Deploys (config:set) timed to serving everywhere.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let etcd = EtcdServer::start_new();
    let endpoint = etcd.endpoint();
    let homes: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let start = |i: usize| {
        let name = format!("n{}", i + 1);
        Server::start_with(
            homes[i].path(),
            &[
                "--cluster",
                &endpoint,
                "--node",
                &name,
                "--lease-ttl",
                "2s",
                "--no-access-log",
            ],
        )
    };
    let nodes = [start(0)?, start(1)?, start(2)?];
    let src = tempfile::tempdir()?;
    std::fs::copy(example("hello"), src.path().join("hello.wasm"))?;
    let cli = |node: &Server, args: &[&str]| -> Result<()> {
        let out = node.cli(src.path(), args);
        ensure!(
            out.status.success(),
            "{args:?}: {}",
            wpaas_tests::text(&out)
        );
        Ok(())
    };

    // A first deploy: n2 and n3 fetch the slug from n1.
    let first = Instant::now();
    cli(&nodes[0], &["deploy", "-a", "hello"])?;
    cli(&nodes[0], &["ps:scale", "web=3", "-a", "hello"])?;
    for (i, node) in nodes.iter().enumerate() {
        wait_local_replica(node, "hello", &format!("n{}", i + 1))?;
    }
    let first_deploy = first.elapsed();
    println!(
        "first deploy on n1 + ps:scale web=3 to serving from a local replica on every node: {} ms",
        first_deploy.as_millis()
    );

    let mut reach = Vec::new();
    for run in 0..args.runs {
        let value = format!("run{run}");
        let started = Instant::now();
        cli(
            &nodes[0],
            &["config:set", &format!("GREETING={value}"), "-a", "hello"],
        )?;
        let acknowledged = started.elapsed();
        wait_all(&nodes, "hello.localhost", &format!("GREETING={value}"))?;
        let everywhere = started.elapsed();
        println!(
            "config:set on n1: acknowledged {} ms, serving on all 3 nodes {} ms",
            acknowledged.as_millis(),
            everywhere.as_millis()
        );
        reach.push(everywhere.as_secs_f64() * 1000.0);
    }
    reach.sort_by(f64::total_cmp);

    // Forwarding: one replica, on n1.
    cli(&nodes[0], &["ps:scale", "web=1", "-a", "hello"])?;
    wait_placed(&nodes[2], "hello", &["n1"])?;
    let load = Load {
        wrk: ensure_wrk()?,
        threads: 2,
        connections: args.connections,
        duration: args.duration,
        host: Some("hello.localhost".into()),
        request: None,
    };
    let local = load.measure("local (n1)", nodes[0].router)?;
    let forwarded = load.measure("forwarded (n3 -> n1)", nodes[2].router)?;
    let ratio = forwarded.report.requests_per_sec / local.report.requests_per_sec;
    println!(
        "forwarded/local req/s: {ratio:.2} ({:.0} vs {:.0}); p50 {:.2} vs {:.2} ms",
        forwarded.report.requests_per_sec,
        local.report.requests_per_sec,
        forwarded.report.p50_ms,
        local.report.p50_ms
    );

    // Failover: web.1 on n1, web.2 on n2; n1 dies.
    cli(&nodes[0], &["ps:scale", "web=2", "-a", "hello"])?;
    wait_placed(&nodes[2], "hello", &["n1", "n2"])?;
    let [n1, n2, n3] = nodes;
    let client = wpaas_tests::client();
    let killed = Instant::now();
    n1.kill();
    let (mut sent, mut failed) = (0u64, 0u64);
    let moved = loop {
        sent += 1;
        if !get_ok(&client, n3.router, "hello.localhost", "") {
            failed += 1;
        }
        let placed = placed(&n2, "hello");
        if placed.len() == 2 && !placed.iter().any(|n| n == "n1") {
            break killed.elapsed();
        }
        ensure!(
            killed.elapsed() < Duration::from_secs(30),
            "web.1 was not moved off the dead node: {placed:?}"
        );
    };
    println!(
        "failover: web.1 placed on a live node {} ms after kill -9 of n1 (lease TTL 2 s); \
         {failed} of {sent} requests through n3 failed meanwhile",
        moved.as_millis()
    );
    drop((n2, n3));

    let out = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let report = json!({
        "first_deploy_ms": first_deploy.as_secs_f64() * 1000.0,
        "config_set_serving_everywhere_ms": reach,
        "local": local.to_json(),
        "forwarded": forwarded.to_json(),
        "forwarded_over_local_rps": ratio,
        "failover_ms": moved.as_secs_f64() * 1000.0,
        "failover_requests": {"sent": sent, "failed": failed},
    });
    std::fs::write(
        out.join("cluster.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("wrote target/bench/cluster.json");
    Ok(())
}

/// Waits until every node's router answers `host` with a body containing
/// `needle`.
fn wait_all(nodes: &[Server], host: &str, needle: &str) -> Result<()> {
    let client = wpaas_tests::client();
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in nodes {
        while !get_ok(&client, node.router, host, needle) {
            ensure!(Instant::now() < deadline, "{} never served it", node.router);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

fn get_ok(
    client: &reqwest::blocking::Client,
    router: SocketAddr,
    host: &str,
    needle: &str,
) -> bool {
    client
        .get(format!("http://{router}/"))
        .header("host", host)
        .send()
        .ok()
        .filter(|r| r.status().is_success())
        .and_then(|r| r.text().ok())
        .is_some_and(|body| body.contains(needle))
}

/// The nodes of `app`'s web replicas, as `ps` on `node` shows them.
fn placed(node: &Server, app: &str) -> Vec<String> {
    wpaas_tests::replicas(&node.ps(app), "web")
        .iter()
        .filter_map(|r| r.node.clone())
        .collect()
}

/// Waits until `node`'s own `ps` shows a web replica running there (with
/// its live numbers: loaded, not only placed).
fn wait_local_replica(node: &Server, app: &str, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ps = node.ps(app);
        let here = wpaas_tests::replicas(&ps, "web")
            .iter()
            .any(|r| r.node.as_deref() == Some(name) && r.served.is_some());
        if here {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{name} never ran a web replica");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_placed(node: &Server, app: &str, want: &[&str]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = placed(node, app);
        if got == want {
            // One more round for every node to follow it.
            std::thread::sleep(Duration::from_millis(1000));
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "placed {got:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
