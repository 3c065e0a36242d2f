//! Does a large deploy stall other apps? Router latency during big deploys.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_deploy_stall -- [--mib 512] [--deploys 2]
//! ```
//!
//! Starts a real `wpaas server` (ports 0, temporary `WPAAS_HOME`), deploys
//! `hello` as app `probe`, then measures the latency of `GET /` on `probe`
//! through the router, one request after another:
//!
//! * `idle` — for a few seconds with nothing else going on;
//! * `deploying` — while `--deploys` deploys of `--mib` MiB each (files of
//!   incompressible bytes beside a hello.wasm) run at once, from upload
//!   through unpack, slug packing and release to cleanup.
//!
//! Prints p50, p99 and max of both and the ratio of the maxima. The upload
//! unpacking, slug packing, digesting and directory removal all run off
//! the async workers; if one did not, the max while deploying would be a
//! whole second or more.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use wpaas_tests::{example, incompressible, Server};

#[derive(Parser, Debug)]
#[command(
    name = "bench_deploy_stall",
    about = "Router latency to one app while large deploys of others run"
)]
struct Args {
    /// Size of each deploy's source, in MiB.
    #[arg(long, default_value_t = 512)]
    mib: usize,
    /// Deploys running at once.
    #[arg(long, default_value_t = 2)]
    deploys: usize,
    /// Seconds of idle measurement.
    #[arg(long, default_value_t = 3)]
    idle_secs: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let home = tempfile::tempdir()?;
    let size = format!("{}M", args.mib * 2 + 64);
    let server = Server::start_with(
        home.path(),
        &[
            "--max-upload",
            &size,
            "--max-slug",
            &size,
            "--no-access-log",
        ],
    )?;
    let probe = tempfile::tempdir()?;
    std::fs::copy(example("hello"), probe.path().join("hello.wasm"))?;
    let out = server.cli(probe.path(), &["deploy", "-a", "probe"]);
    ensure!(out.status.success(), "probe deploy failed");

    // Sources: files of 64 MiB (or less) of incompressible bytes.
    let chunk = incompressible(64 << 20);
    let sources: Vec<tempfile::TempDir> = (0..args.deploys)
        .map(|n| -> Result<tempfile::TempDir> {
            let dir = tempfile::tempdir()?;
            std::fs::copy(example("hello"), dir.path().join("hello.wasm"))?;
            let mut left = args.mib << 20;
            let mut i = 0;
            while left > 0 {
                let len = left.min(chunk.len());
                // A different first byte per app and file: distinct slugs.
                let mut data = chunk[..len].to_vec();
                data[0] = (n * 31 + i) as u8;
                std::fs::write(dir.path().join(format!("data{i}.bin")), data)?;
                left -= len;
                i += 1;
            }
            Ok(dir)
        })
        .collect::<Result<_>>()?;
    drop(chunk);

    let idle = measure(&server, |started| {
        started.elapsed() < Duration::from_secs(args.idle_secs)
    });
    let started = Instant::now();
    let mut children: Vec<Child> = sources
        .iter()
        .enumerate()
        .map(|(n, src)| spawn_deploy(&server, src.path(), &format!("big{n}")))
        .collect::<Result<_>>()?;
    let busy = measure(&server, |_| {
        children
            .iter_mut()
            .any(|c| c.try_wait().ok().flatten().is_none())
    });
    let took = started.elapsed();
    for mut child in children {
        ensure!(child.wait()?.success(), "a big deploy failed");
    }

    println!(
        "{} deploys of {} MiB at once took {:.1?}",
        args.deploys, args.mib, took
    );
    report("idle", &idle);
    report("deploying", &busy);
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    println!(
        "max latency while deploying / idle: {:.1}x",
        max(&busy).as_secs_f64() / max(&idle).as_secs_f64().max(1e-6)
    );
    Ok(())
}

fn spawn_deploy(server: &Server, dir: &Path, app: &str) -> Result<Child> {
    Ok(server
        .command(dir, &["deploy", "-a", app])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

/// Sequential GETs to `probe` while `go` says so; their latencies.
fn measure(server: &Server, mut go: impl FnMut(Instant) -> bool) -> Vec<Duration> {
    let client = wpaas_tests::client();
    let url = format!("http://{}/", server.router);
    let started = Instant::now();
    let mut samples = Vec::new();
    while go(started) && started.elapsed() < Duration::from_secs(600) {
        let sent = Instant::now();
        let ok = client
            .get(&url)
            .header("host", "probe.localhost")
            .send()
            .is_ok_and(|r| r.status().is_success());
        if ok {
            samples.push(sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    samples
}

fn report(name: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:>10}: {} requests, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        sorted.len(),
        at(0.5),
        at(0.99),
        sorted.last().copied().unwrap_or_default()
    );
}
