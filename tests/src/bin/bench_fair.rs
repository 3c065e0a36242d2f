//! Fair shares: the latency of one app (the victim) alone, and while
//! another app (the hog) is flooded with slow requests, on one `wpaas
//! server`; once with per-app shares of the instance pool (the default,
//! a quarter of the pool) and once with shares as large as the pool (what
//! wpaas did before).
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_fair -- [--seconds 5] [--pool 64] [--flood 128] [--sleep-ms 1000]
//! ```
//!
//! Both apps run the hostile example. The victim's clients (`--victims`
//! threads, keep-alive) GET `/` in a loop; the flood's clients (`--flood`
//! threads) GET `/sleep?ms=N` in a loop, pausing 5 ms after a refusal so
//! that the 2-core machines this runs on measure isolation rather than a
//! CPU saturated by 503s. Prints p50/p99 of the victim's 200s, the share of
//! its requests that failed, and the ratio to the victim alone. Loopback
//! only, bounded in time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use wpaas_tests::{example, Server};

#[derive(Parser, Debug)]
#[command(
    name = "bench_fair",
    about = "victim latency while another app is flooded"
)]
struct Args {
    /// Seconds of each measured phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Instances in the server's pool (WPAAS_MAX_INSTANCES).
    #[arg(long, default_value_t = 64)]
    pool: u32,
    /// Concurrent slow requests flooding the hog.
    #[arg(long, default_value_t = 128)]
    flood: usize,
    /// How long each flooding request sleeps in the guest.
    #[arg(long, default_value_t = 1000)]
    sleep_ms: u64,
    /// Concurrent clients of the victim.
    #[arg(long, default_value_t = 4)]
    victims: usize,
}

/// What the victim's clients saw.
struct Sample {
    ok: Vec<Duration>,
    failed: usize,
}

impl Sample {
    fn percentile(&self, p: f64) -> Duration {
        if self.ok.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.ok.len() as f64 - 1.0) * p).round() as usize;
        self.ok[i]
    }

    fn failed_share(&self) -> f64 {
        self.failed as f64 / (self.failed + self.ok.len()).max(1) as f64
    }
}

fn victim_load(server: &Server, clients: usize, seconds: u64) -> Sample {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let router = server.router;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                let (mut ok, mut failed) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let answer = http
                        .get(format!("http://{router}/"))
                        .header("host", "victim.localhost")
                        .send();
                    match answer {
                        Ok(r) if r.status() == 200 => match r.bytes() {
                            Ok(_) => ok.push(start.elapsed()),
                            Err(_) => failed += 1,
                        },
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut sample = Sample {
        ok: Vec::new(),
        failed: 0,
    };
    for t in threads {
        let (ok, failed) = t.join().expect("victim thread");
        sample.ok.extend(ok);
        sample.failed += failed;
    }
    sample.ok.sort();
    sample
}

/// Floods the hog until `stop`; counts its 200s and 503s.
fn start_flood(
    server: &Server,
    args: &Args,
    stop: &Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<[AtomicUsize; 3]>) {
    let counts: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let router = server.router;
    let threads = (0..args.flood)
        .map(|_| {
            let (stop, counts, ms) = (stop.clone(), counts.clone(), args.sleep_ms);
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("client");
                while !stop.load(Ordering::Relaxed) {
                    let answer = http
                        .get(format!("http://{router}/sleep?ms={ms}"))
                        .header("host", "hog.localhost")
                        .send()
                        .map(|r| r.status().as_u16());
                    let slot = match answer {
                        Ok(200) => 0,
                        Ok(503) => 1,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                    if slot != 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    (threads, counts)
}

fn deploy(server: &Server, dir: &Path, app: &str) -> Result<()> {
    let out = server.cli(dir, &["deploy", "-a", app]);
    ensure!(
        out.status.success(),
        "deploy {app}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

struct Run {
    alone: Sample,
    flooded: Sample,
    hog: [usize; 3],
}

fn run(args: &Args, app_instances: u32) -> Result<Run> {
    let home = tempfile::tempdir()?;
    let src = tempfile::tempdir()?;
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm"))?;
    let (pool, share) = (args.pool.to_string(), app_instances.to_string());
    let server = Server::start_with_env(
        home.path(),
        &["--no-access-log"],
        &[
            ("WPAAS_MAX_INSTANCES", pool.as_str()),
            ("WPAAS_APP_INSTANCES", share.as_str()),
        ],
    )?;
    deploy(&server, src.path(), "victim")?;
    deploy(&server, src.path(), "hog")?;
    // Warm both up, then the victim alone.
    victim_load(&server, args.victims, 1);
    let alone = victim_load(&server, args.victims, args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let (flooders, counts) = start_flood(&server, args, &stop);
    // Let the flood take what it can before measuring.
    std::thread::sleep(Duration::from_millis(args.sleep_ms.min(2000)));
    let flooded = victim_load(&server, args.victims, args.seconds);
    stop.store(true, Ordering::Relaxed);
    for t in flooders {
        let _ = t.join();
    }
    let hog = [0, 1, 2].map(|i| counts[i].load(Ordering::Relaxed));
    Ok(Run {
        alone,
        flooded,
        hog,
    })
}

fn report(name: &str, run: &Run) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\n{name}");
    for (label, s) in [
        ("victim alone", &run.alone),
        ("victim under flood", &run.flooded),
    ] {
        println!(
            "  {label:<19} p50 {:7.2} ms  p99 {:7.2} ms  ok {:6}  failed {:5} ({:.1}%)",
            ms(s.percentile(0.5)),
            ms(s.percentile(0.99)),
            s.ok.len(),
            s.failed,
            s.failed_share() * 100.0
        );
    }
    let ratio = |p| ms(run.flooded.percentile(p)) / ms(run.alone.percentile(p)).max(1e-9);
    println!(
        "  ratio flooded/alone  p50 x{:.2}  p99 x{:.2}",
        ratio(0.5),
        ratio(0.99)
    );
    println!(
        "  hog: {} answered 200, {} refused 503, {} other",
        run.hog[0], run.hog[1], run.hog[2]
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.pool >= 4, "--pool must be at least 4");
    println!(
        "pool {} instances, flood {} x /sleep?ms={}, victim {} clients, {} s per phase",
        args.pool, args.flood, args.sleep_ms, args.victims, args.seconds
    );
    let shared = run(&args, args.pool / 4)?;
    report(
        &format!(
            "per-app share {} of {} (default: a quarter)",
            args.pool / 4,
            args.pool
        ),
        &shared,
    );
    let unshared = run(&args, args.pool)?;
    report(
        &format!("no share: one app may take all {} instances", args.pool),
        &unshared,
    );
    Ok(())
}
