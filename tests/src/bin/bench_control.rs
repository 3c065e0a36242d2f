//! Control-plane benchmark: how long until a change serves traffic.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_control -- [--runs 5] [--rust-runs 5] [--python-runs 3]
//! ```
//!
//! Starts a real `wpaas server` (ports 0, temporary `WPAAS_HOME`) and times,
//! from the moment the `wpaas` CLI process is started until the router
//! answers with the new release's content (polled every
//! [`POLL_INTERVAL`] while the CLI runs):
//!
//! * `deploy-wasm` — `wpaas deploy` of a directory holding a prebuilt
//!   `hello.wasm`; each run's module differs (its greeting is patched), so
//!   every deploy compiles new code, as a real new version would;
//! * `config-set` — `wpaas config:set GREETING=…`;
//! * `rollback` — `wpaas rollback vK` to one of the earlier deploys;
//! * `rust-cold` — `wpaas deploy` of a copy of examples/hello as a fresh app,
//!   so its per-app build cache is empty (cargo's registry is warm);
//! * `rust-rebuild` — the same app again after a one-line change (the
//!   greeting's string literal);
//! * `python-cold` / `python-rebuild` — the same for a copy of
//!   examples/python-hello (componentize-py's toolchain is installed before
//!   the first run, untimed; the app has no dependencies), and the size of
//!   the component it builds.
//!
//! Prints median, min and max per operation and the cold/rebuild ratio, and
//! writes them with every sample to `target/bench/control.json`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use wpaas_tests::{example, workspace_root, Server};

/// How often the router is asked whether the new release serves.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// The greeting in examples/hello; patched per run (same length) in the
/// prebuilt module, rewritten in the copied source.
const HELLO_GREETING: &str = "Hello from wpaas!";

#[derive(Parser, Debug)]
#[command(
    name = "bench_control",
    about = "Control plane: time from CLI start to the new release serving"
)]
struct Args {
    /// Timed runs of deploy-wasm, config-set and rollback.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Timed Rust cold builds (each a fresh app) and rebuilds.
    #[arg(long, default_value_t = 5)]
    rust_runs: usize,
    /// Timed Python cold builds (each a fresh app) and rebuilds; 0 skips them.
    #[arg(long, default_value_t = 3)]
    python_runs: usize,
}

/// One timed change.
struct Sample {
    /// CLI start → the router serves the new content.
    live: Duration,
    /// CLI start → the CLI exited.
    cli: Duration,
}

/// The samples of one operation.
struct Operation {
    name: &'static str,
    samples: Vec<Sample>,
}

impl Operation {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            samples: Vec::new(),
        }
    }

    fn live_ms(&self) -> Vec<f64> {
        self.samples.iter().map(|s| ms(s.live)).collect()
    }

    fn cli_ms(&self) -> Vec<f64> {
        self.samples.iter().map(|s| ms(s.cli)).collect()
    }

    fn to_json(&self) -> Value {
        let (live, cli) = (self.live_ms(), self.cli_ms());
        json!({
            "operation": self.name,
            "runs": live.len(),
            "live_ms": { "median": median(&live), "min": min(&live), "max": max(&live), "samples": live },
            "cli_exit_ms": { "median": median(&cli), "samples": cli },
        })
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.rust_runs >= 1, "--rust-runs must be at least 1");

    println!("building wpaas and the guest examples (cargo, examples/build.sh)…");
    let hello = std::fs::read(example("hello")).context("reading the hello example")?;
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!("load average before the runs: {loadavg}");

    let home = tempfile::tempdir()?;
    let work = tempfile::tempdir()?;
    let server = Server::start(home.path())?;
    let bench = Bench {
        server: &server,
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()?,
    };

    let mut operations = bench.wasm_app(work.path(), &hello, args.runs)?;
    operations.extend(bench.rust_app(work.path(), args.rust_runs)?);
    let python_size = if args.python_runs > 0 {
        let (ops, size) = bench.python_app(work.path(), args.python_runs)?;
        operations.extend(ops);
        Some(size)
    } else {
        None
    };
    drop(server);

    println!(
        "\n{:<14} {:>5} {:>12} {:>10} {:>10} {:>16}",
        "operation", "runs", "median ms", "min ms", "max ms", "CLI exit med ms"
    );
    for op in &operations {
        let (live, cli) = (op.live_ms(), op.cli_ms());
        println!(
            "{:<14} {:>5} {:>12.1} {:>10.1} {:>10.1} {:>16.1}",
            op.name,
            live.len(),
            median(&live),
            min(&live),
            max(&live),
            median(&cli)
        );
    }
    let ratio = median(&operations[3].live_ms()) / median(&operations[4].live_ms());
    println!("rust cold build / rebuild after a one-line change (medians): {ratio:.1}x");
    if let Some(size) = python_size {
        println!("python-hello component: {:.1} MB", size as f64 / 1e6);
    }

    let report = json!({
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavg_before": loadavg,
        },
        "measured": "CLI process start until the router answers with the new release's content",
        "poll_interval_ms": ms(POLL_INTERVAL),
        "operations": operations.iter().map(Operation::to_json).collect::<Vec<_>>(),
        "ratios": { "rust-cold/rust-rebuild": ratio },
        "python_component_bytes": python_size,
    });
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("control.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

struct Bench<'a> {
    server: &'a Server,
    http: reqwest::blocking::Client,
}

impl Bench<'_> {
    /// Runs `wpaas ARGS…` in `dir` and polls `app` through the router until
    /// its body contains `expect`. Returns the timing and the release the
    /// CLI reported.
    fn timed(&self, dir: &Path, args: &[&str], app: &str, expect: &str) -> Result<(Sample, u64)> {
        std::thread::scope(|scope| {
            let start = Instant::now();
            let cli = scope.spawn(move || {
                let output = self.server.cli(dir, args);
                (output, start.elapsed())
            });
            let mut live = None;
            while live.is_none() {
                // Read before polling: a miss after the CLI exited is final.
                let finished = cli.is_finished();
                if self.serves(app, expect) {
                    live = Some(start.elapsed());
                } else if finished {
                    break;
                } else {
                    std::thread::sleep(POLL_INTERVAL);
                }
            }
            let (output, cli) = cli.join().expect("the CLI thread does not panic");
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            ensure!(output.status.success(), "wpaas {args:?} failed:\n{log}");
            let Some(live) = live else {
                bail!("wpaas {args:?} succeeded but {app} does not answer {expect:?}:\n{log}");
            };
            let version =
                released_version(&log).with_context(|| format!("no version in:\n{log}"))?;
            Ok((Sample { live, cli }, version))
        })
    }

    /// deploy-wasm, config-set and rollback on one app serving a prebuilt
    /// hello.wasm.
    fn wasm_app(&self, work: &Path, hello: &[u8], runs: usize) -> Result<Vec<Operation>> {
        // deploy-wasm: one untimed deploy creates the app, then timed redeploys.
        let wasm_dir = work.join("wasm");
        std::fs::create_dir(&wasm_dir)?;
        let mut deploys = Vec::new(); // (version, body) of each timed deploy
        let mut deploy_wasm = Operation::new("deploy-wasm");
        for run in 0..=runs {
            let marker = format!("dep-{run:02}");
            std::fs::write(wasm_dir.join("hello.wasm"), patch_greeting(hello, &marker)?)?;
            let expect = format!("Hello from {marker} (GREETING=unset)");
            let (sample, version) =
                self.timed(&wasm_dir, &["deploy", "-a", "wasm"], "wasm", &expect)?;
            if run > 0 {
                deploy_wasm.samples.push(sample);
                deploys.push((version, expect));
            }
        }
        report_progress(&deploy_wasm);

        let mut config_set = Operation::new("config-set");
        for run in 1..=runs {
            let set = format!("GREETING=cfg-{run}");
            let expect = format!("(GREETING=cfg-{run})");
            let (sample, _) = self.timed(
                &wasm_dir,
                &["config:set", &set, "-a", "wasm"],
                "wasm",
                &expect,
            )?;
            config_set.samples.push(sample);
        }
        report_progress(&config_set);

        // Rolling back to each timed deploy in turn: every target differs from
        // what serves (the current release has a config var, they do not).
        let mut rollback = Operation::new("rollback");
        for (version, expect) in deploys.iter().cycle().take(runs) {
            let target = format!("v{version}");
            let (sample, _) = self.timed(
                &wasm_dir,
                &["rollback", &target, "-a", "wasm"],
                "wasm",
                expect,
            )?;
            rollback.samples.push(sample);
        }
        report_progress(&rollback);

        Ok(vec![deploy_wasm, config_set, rollback])
    }

    /// rust-cold and rust-rebuild: each run deploys a fresh copy of
    /// examples/hello as a new app, then again after a one-line change.
    fn rust_app(&self, work: &Path, runs: usize) -> Result<Vec<Operation>> {
        let mut cold = Operation::new("rust-cold");
        let mut rebuild = Operation::new("rust-rebuild");
        for run in 1..=runs {
            let app = format!("rust-{run}");
            let dir = work.join(&app);
            copy_hello_crate(&dir)?;
            for (marker, operation) in [
                (format!("cold-{run}"), &mut cold),
                (format!("edit-{run}"), &mut rebuild),
            ] {
                set_greeting(&dir, &marker)?;
                let expect = format!("Hello from {marker}!");
                let (sample, _) = self.timed(&dir, &["deploy", "-a", &app], &app, &expect)?;
                operation.samples.push(sample);
            }
            println!(
                "  {app}: cold {:.0} ms, rebuild {:.0} ms",
                ms(cold.samples[run - 1].live),
                ms(rebuild.samples[run - 1].live)
            );
        }
        Ok(vec![cold, rebuild])
    }

    /// python-cold and python-rebuild: each run deploys a fresh copy of
    /// examples/python-hello as a new app, then again after a one-line
    /// change. Also returns the size of the component built.
    fn python_app(&self, work: &Path, runs: usize) -> Result<(Vec<Operation>, u64)> {
        let from = workspace_root().join("examples/python-hello/app.py");
        let source = std::fs::read_to_string(&from)?;
        ensure!(
            source.contains("from Python!"),
            "no greeting in {}",
            from.display()
        );
        // Untimed: installs componentize-py once for the server.
        let warm = work.join("python-warm");
        std::fs::create_dir_all(&warm)?;
        std::fs::write(warm.join("app.py"), &source)?;
        self.timed(
            &warm,
            &["deploy", "-a", "python-warm"],
            "python-warm",
            "from Python!",
        )?;
        let mut cold = Operation::new("python-cold");
        let mut rebuild = Operation::new("python-rebuild");
        let mut size = 0;
        for run in 1..=runs {
            let app = format!("python-{run}");
            let dir = work.join(&app);
            std::fs::create_dir_all(&dir)?;
            for (marker, operation) in [
                (format!("cold-{run}"), &mut cold),
                (format!("edit-{run}"), &mut rebuild),
            ] {
                let edited = source.replace("from Python!", &format!("from {marker}!"));
                std::fs::write(dir.join("app.py"), edited)?;
                let expect = format!("from {marker}!");
                let (sample, _) = self.timed(&dir, &["deploy", "-a", &app], &app, &expect)?;
                operation.samples.push(sample);
            }
            let log = self.server.ok(&dir, &["builds:output", "-a", &app]);
            size = built_size(&log).unwrap_or(size);
            println!(
                "  {app}: cold {:.0} ms, rebuild {:.0} ms",
                ms(cold.samples[run - 1].live),
                ms(rebuild.samples[run - 1].live)
            );
        }
        Ok((vec![cold, rebuild], size))
    }

    fn serves(&self, app: &str, expect: &str) -> bool {
        self.http
            .get(format!("http://{}/", self.server.router))
            .header("host", format!("{app}.localhost"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.text().ok())
            .is_some_and(|body| body.contains(expect))
    }
}

/// The bytes of `Built app.wasm (18.5 MB, …)` in a Python build's output.
fn built_size(log: &str) -> Option<u64> {
    let rest = log.split("Built app.wasm (").nth(1)?;
    let mb: f64 = rest.split(" MB").next()?.parse().ok()?;
    Some((mb * 1e6) as u64)
}

/// The `vN` of `Released vN: …` or `… done, vN` in the CLI's output.
fn released_version(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|line| {
        let rest = line
            .split_once("Released v")
            .or_else(|| line.split_once("done, v"))?
            .1;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// `hello.wasm` with its greeting replaced by `Hello from MARKER` (same
/// length, so the module stays valid and differs only in a data segment).
fn patch_greeting(wasm: &[u8], marker: &str) -> Result<Vec<u8>> {
    let replacement = format!("Hello from {marker}");
    ensure!(
        replacement.len() == HELLO_GREETING.len(),
        "marker {marker:?} has the wrong length"
    );
    let needle = HELLO_GREETING.as_bytes();
    let at: Vec<usize> = wasm
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    ensure!(
        at.len() == 1,
        "expected {HELLO_GREETING:?} once in hello.wasm, found {}",
        at.len()
    );
    let mut patched = wasm.to_vec();
    patched[at[0]..at[0] + needle.len()].copy_from_slice(replacement.as_bytes());
    Ok(patched)
}

/// Copies examples/hello (manifest, lock file, sources) to `dir`; its
/// `wpaas-sdk = "0.1"` is supplied by the builder.
fn copy_hello_crate(dir: &Path) -> Result<()> {
    let from = workspace_root().join("examples/hello");
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::copy(from.join("Cargo.toml"), dir.join("Cargo.toml"))?;
    std::fs::copy(from.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    for entry in std::fs::read_dir(from.join("src"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join("src").join(entry.file_name()))?;
    }
    Ok(())
}

/// Rewrites the greeting literal in the copied crate's src/main.rs to
/// `Hello from MARKER`: a one-line change.
fn set_greeting(dir: &Path, marker: &str) -> Result<()> {
    let main = dir.join("src/main.rs");
    let source = std::fs::read_to_string(&main)?;
    let line = source
        .lines()
        .find(|l| l.contains("\"Hello from "))
        .context("no greeting literal in src/main.rs")?;
    let start = line.find("\"Hello from ").expect("found above") + 1;
    let end = line[start..]
        .find('!')
        .context("the greeting ends with `!`")?
        + start;
    let edited = format!("{}Hello from {marker}{}", &line[..start], &line[end..]);
    std::fs::write(&main, source.replacen(line, &edited, 1))?;
    Ok(())
}

fn report_progress(op: &Operation) {
    let live = op.live_ms();
    println!(
        "  {}: {:?} ms",
        op.name,
        live.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // The middle value, or the mean of the two middle values.
    let n = sorted.len();
    (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
