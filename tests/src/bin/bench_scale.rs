//! Autoscaling benchmark: waking from zero, and how many sleeping apps fit.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_scale -- [--apps 1000] [--cold-starts 200]
//! ```
//!
//! Two real `wpaas server`s (ports 0, temporary `WPAAS_HOME`s), both serving
//! a prebuilt examples/hello deployed through the API as a directory holding
//! `hello.wasm` (the wasm buildpack):
//!
//! * **wake from zero** — one app autoscaled with `min 0` and a short idle
//!   time. Each round waits until `GET /apps/APP/ps` shows web at 0
//!   replicas, then times a GET through the router on a keep-alive
//!   connection that is already open (`cold`: the request wakes a replica),
//!   and at once a second GET (`warm`). Prints median and p99 of cold, warm
//!   and cold − warm per round (the added latency), in microseconds.
//! * **density** — the server's RSS (`VmRSS` of /proc/PID/status) right
//!   after start, then after `--apps` apps are deployed (a few threads, one
//!   tarball packed once), autoscaled to `min 0` and all asleep at zero
//!   replicas; the per-app difference; the deploy time. Then one request to
//!   every app must answer 200 with hello's greeting.
//!
//! Writes everything to `target/bench/scale.json`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use wpaas_api::apps::CreateApp;
use wpaas_api::builds::DeployResult;
use wpaas_api::ps::{AutoscaleRequest, ProcessType};
use wpaas_api::stream::{read_line, StreamLine};
use wpaas_api::ErrorBody;
use wpaas_tests::{example, workspace_root, Server};

/// What hello answers (no GREETING is set).
const HELLO_BODY: &str = "Hello from wpaas! (GREETING=unset)";

/// How often `ps` is asked whether web is at zero replicas.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The longest wait for an app to fall asleep (idle time + scaler ticks).
const SLEEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(
    name = "bench_scale",
    about = "Autoscaling: latency of waking from zero, memory of sleeping apps"
)]
struct Args {
    /// Apps deployed for the density measurement.
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// Timed wake-ups from zero replicas.
    #[arg(long, default_value_t = 200)]
    cold_starts: usize,
    /// Idle time (ms) after which the scaler drops web to zero.
    #[arg(long, default_value_t = 200)]
    idle_ms: u64,
    /// Client threads deploying apps and sending the density requests.
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.cold_starts >= 1, "--cold-starts must be at least 1");
    ensure!(args.apps >= 1, "--apps must be at least 1");
    ensure!(args.threads >= 1, "--threads must be at least 1");

    println!("building wpaas and the guest examples (cargo, examples/build.sh)…");
    let hello = std::fs::read(example("hello")).context("reading the hello example")?;
    let work = tempfile::tempdir()?;
    std::fs::write(work.path().join("hello.wasm"), &hello)?;
    let tarball = wpaas_builder::archive::pack(work.path()).context("packing hello.wasm")?;
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!("load average before the runs: {loadavg}");

    let wake = {
        let home = tempfile::tempdir()?;
        let server = Server::start(home.path())?;
        let api = Api::new(&server)?;
        wake_from_zero(&server, &api, &tarball, args.cold_starts, args.idle_ms)
            .with_context(|| format!("server log:\n{}", server.stderr()))?
    };
    let density = {
        let home = tempfile::tempdir()?;
        let server = Server::start(home.path())?;
        let api = Api::new(&server)?;
        density(&server, &api, &tarball, &args)
            .with_context(|| format!("server log (tail):\n{}", tail(&server.stderr(), 40)))?
    };

    let report = json!({
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavg_before": loadavg,
        },
        "idle_ms": args.idle_ms,
        "wake_from_zero": wake,
        "density": density,
    });
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("scale.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// Times `rounds` requests that wake web from zero, each followed by one
/// to the replica it woke.
fn wake_from_zero(
    server: &Server,
    api: &Api,
    tarball: &[u8],
    rounds: usize,
    idle_ms: u64,
) -> Result<Value> {
    let app = "cold";
    api.create_and_deploy(app, tarball)?;
    api.autoscale(app, idle_ms)?;
    // One client, one connection: it is opened by the first request and
    // reused, so no round times a TCP connect.
    let router = reqwest::blocking::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(None)
        .timeout(Duration::from_secs(10))
        .build()?;
    let get = || -> Result<Duration> {
        let start = Instant::now();
        let response = router
            .get(format!("http://{}/", server.router))
            .header("host", format!("{app}.localhost"))
            .send()?;
        let status = response.status();
        let body = response.text()?;
        let took = start.elapsed();
        ensure!(
            status.is_success() && body.contains(HELLO_BODY),
            "{app} answered {status}: {body:?}"
        );
        Ok(took)
    };
    get()?; // opens the connection

    println!("\nwake from zero: {rounds} rounds, idle {idle_ms} ms");
    let (mut cold, mut warm, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        api.wait_asleep(app)?;
        let c = us(get()?);
        let w = us(get()?);
        ensure!(
            api.web_replicas(app)? >= 1,
            "round {round}: web is still at zero after a request"
        );
        cold.push(c);
        warm.push(w);
        added.push(c - w);
        if round.is_multiple_of(50) || round == rounds {
            println!("  {round}/{rounds}");
        }
    }
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>10}",
        "µs", "median", "p99", "min", "max"
    );
    for (name, values) in [("cold", &cold), ("warm", &warm), ("cold - warm", &added)] {
        println!(
            "{name:<18} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
            percentile(values, 50.0),
            percentile(values, 99.0),
            percentile(values, 0.0),
            percentile(values, 100.0)
        );
    }
    let stats = |values: &[f64]| {
        json!({
            "median": percentile(values, 50.0),
            "p99": percentile(values, 99.0),
            "min": percentile(values, 0.0),
            "max": percentile(values, 100.0),
        })
    };
    Ok(json!({
        "rounds": rounds,
        "measured": "GET through the router on an open keep-alive connection; cold = web at 0 replicas, warm = the next request",
        "cold_us": stats(&cold),
        "warm_us": stats(&warm),
        "added_us": stats(&added),
        "samples": { "cold_us": cold, "warm_us": warm },
    }))
}

/// Server RSS with no apps, then with `args.apps` sleeping apps; then one
/// request to each.
fn density(server: &Server, api: &Api, tarball: &[u8], args: &Args) -> Result<Value> {
    let n = args.apps;
    let rss_start = rss_kib(server.pid())?;
    println!(
        "\ndensity: {n} apps, {} threads; server RSS at start {}",
        args.threads,
        mib(rss_start)
    );
    let apps: Vec<String> = (0..n).map(|i| format!("app-{i:04}")).collect();

    let start = Instant::now();
    let deploy = |app: &str| {
        api.create_and_deploy(app, tarball)?;
        api.autoscale(app, args.idle_ms)
    };
    // The first deploy alone: it compiles hello.wasm into the code cache;
    // the others load it from there. (Concurrent first compiles of one
    // module in one server race on the cache's temporary file name.)
    deploy(&apps[0])?;
    let deployed = 1 + for_each_app(&apps[1..], args.threads, deploy)?;
    let deploy_time = start.elapsed();
    println!(
        "  deployed and autoscaled {deployed} apps in {:.1} s ({:.0} ms each, {:.1} apps/s)",
        deploy_time.as_secs_f64(),
        ms(deploy_time) / n as f64,
        n as f64 / deploy_time.as_secs_f64()
    );
    let rss_awake = rss_kib(server.pid())?;

    let start = Instant::now();
    let mut awake: BTreeSet<&String> = apps.iter().collect();
    while !awake.is_empty() {
        ensure!(
            start.elapsed() < SLEEP_TIMEOUT * 4,
            "{} apps still have web replicas after {:?}, e.g. {:?}",
            awake.len(),
            start.elapsed(),
            awake.first()
        );
        let mut still = BTreeSet::new();
        for app in awake {
            if api.web_replicas(app)? > 0 {
                still.insert(app);
            }
        }
        awake = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "  all {n} at zero replicas {:.1} s later",
        start.elapsed().as_secs_f64()
    );
    let rss_asleep = rss_kib(server.pid())?;
    let per_app = (rss_asleep.saturating_sub(rss_start)) as f64 / n as f64;
    println!(
        "  server RSS: {} at start, {} right after the deploys, {} with all {n} asleep ({:.0} KiB per app)",
        mib(rss_start),
        mib(rss_awake),
        mib(rss_asleep),
        per_app
    );

    // Every app once, in a scattered order, from a few threads.
    let mut order = apps.clone();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..order.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let router = wpaas_tests::client();
    let latencies = Mutex::new(Vec::with_capacity(n));
    let start = Instant::now();
    let answered = for_each_app(&order, args.threads, |app| {
        let begin = Instant::now();
        let response = router
            .get(format!("http://{}/", server.router))
            .header("host", format!("{app}.localhost"))
            .send()?;
        let status = response.status();
        let body = response.text()?;
        let took = begin.elapsed();
        ensure!(
            status.is_success() && body.contains(HELLO_BODY),
            "{app} answered {status}: {body:?}"
        );
        latencies.lock().expect("latencies").push(us(took));
        Ok(())
    })?;
    let wake_all = start.elapsed();
    let latencies = latencies.into_inner().expect("latencies");
    let rss_woken = rss_kib(server.pid())?;
    println!(
        "  woke all {answered} with one request each (200, hello's greeting) in {:.2} s: median {:.0} µs, p99 {:.0} µs per request; RSS then {}",
        wake_all.as_secs_f64(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        mib(rss_woken)
    );

    Ok(json!({
        "apps": n,
        "threads": args.threads,
        "deploy_seconds": deploy_time.as_secs_f64(),
        "rss_kib": {
            "start": rss_start,
            "after_deploys": rss_awake,
            "all_asleep": rss_asleep,
            "after_waking_all": rss_woken,
        },
        "rss_kib_per_sleeping_app": per_app,
        "wake_all": {
            "answered_200": answered,
            "seconds": wake_all.as_secs_f64(),
            "median_us": percentile(&latencies, 50.0),
            "p99_us": percentile(&latencies, 99.0),
        },
    }))
}

/// Runs `work` for every app from `threads` threads; stops at the first
/// error. Returns how many succeeded (all of them).
fn for_each_app(
    apps: &[String],
    threads: usize,
    work: impl Fn(&str) -> Result<()> + Sync,
) -> Result<usize> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= apps.len() || failed.lock().expect("failed").is_some() {
                    return;
                }
                match work(&apps[i]) {
                    Ok(()) => {
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d.is_multiple_of(200) {
                            println!("  {d}/{}", apps.len());
                        }
                    }
                    Err(err) => {
                        *failed.lock().expect("failed") =
                            Some(err.context(format!("{} (after {} ok)", apps[i], i)));
                        return;
                    }
                }
            });
        }
    });
    if let Some(err) = failed.into_inner().expect("failed") {
        return Err(err);
    }
    Ok(done.into_inner())
}

/// The control API with the server's token.
struct Api {
    http: reqwest::blocking::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(server: &Server) -> Result<Self> {
        Ok(Self {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()?,
            base: format!("http://{}", server.api),
            token: server.token(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// `POST /apps`, then `POST /apps/APP/deploy` with `tarball`; fails
    /// unless the stream's result line reports a release.
    fn create_and_deploy(&self, app: &str, tarball: &[u8]) -> Result<()> {
        let created = self
            .request(reqwest::Method::POST, "/apps")
            .json(&CreateApp {
                name: app.to_string(),
            })
            .send()?;
        succeeded(created).with_context(|| format!("creating {app}"))?;
        let response = self
            .request(reqwest::Method::POST, &format!("/apps/{app}/deploy"))
            .body(tarball.to_vec())
            .send()?;
        let log = succeeded(response)
            .with_context(|| format!("deploying {app}"))?
            .text()?;
        let last = log.lines().last().unwrap_or_default();
        match read_line::<DeployResult>(last).with_context(|| format!("deploying {app}"))? {
            StreamLine::Result(DeployResult::Released { .. }) => Ok(()),
            StreamLine::Result(DeployResult::Failed { error }) => {
                bail!("deploying {app} failed: {error}\n{log}")
            }
            StreamLine::Line(_) => bail!("deploying {app}: no result line in:\n{log}"),
        }
    }

    /// Autoscales web from 0 to 4 replicas, dropping to zero after
    /// `idle_ms` without requests.
    fn autoscale(&self, app: &str, idle_ms: u64) -> Result<()> {
        let response = self
            .request(reqwest::Method::PUT, &format!("/apps/{app}/autoscale/web"))
            .json(&AutoscaleRequest {
                min: 0,
                max: 4,
                target: 8,
                cooldown_ms: idle_ms,
                idle_ms,
            })
            .send()?;
        succeeded(response).with_context(|| format!("autoscaling {app}"))?;
        Ok(())
    }

    /// How many web replicas `ps` lists.
    fn web_replicas(&self, app: &str) -> Result<usize> {
        let response = self
            .request(reqwest::Method::GET, &format!("/apps/{app}/ps"))
            .send()?;
        let types: Vec<ProcessType> = succeeded(response)
            .with_context(|| format!("ps of {app}"))?
            .json()?;
        let web = types
            .iter()
            .find(|t| t.kind == "web")
            .with_context(|| format!("no web type in the ps of {app}: {types:?}"))?;
        Ok(web.replicas.len())
    }

    /// Waits until `ps` shows web at zero replicas.
    fn wait_asleep(&self, app: &str) -> Result<()> {
        let start = Instant::now();
        while self.web_replicas(app)? > 0 {
            ensure!(
                start.elapsed() < SLEEP_TIMEOUT,
                "{app} still has web replicas after {SLEEP_TIMEOUT:?}"
            );
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }
}

/// The response if it succeeded; else its [`ErrorBody`] as the error.
fn succeeded(response: reqwest::blocking::Response) -> Result<reqwest::blocking::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let error = ErrorBody::from_response(status.as_u16(), &response.bytes()?);
    bail!("{status}: {} ({})", error.error, error.code)
}

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile `p` (0–100) of `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
