//! Languages benchmark: for each language wpaas builds, the build times a
//! user sees, the component's size, and its hello's throughput through
//! wpaas beside `wasmtime serve` on the same component — in one run.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_languages -- \
//!     [--languages rust,c,python,js] [--duration 5] [--connections 16] [--threads 2]
//! ```
//!
//! Per language, with a fresh `WPAAS_HOME` and its own caches:
//!
//! * `first` — `wpaas deploy` of a new app made the way a user makes one
//!   (`wpaas new --template LANG`; C: a copy of examples/c-hello), toolchain
//!   install included (componentize-py, componentize-js; none for Rust/C);
//! * `cold` — the same source deployed as a second app: its build cache is
//!   empty, the toolchain is installed;
//! * `rebuild` — the second app again after a one-line change;
//! * `size` — the web process's `.wasm` in the slug;
//! * `wpaas` / `wpaas-copy` — wrk through the router, with the memory
//!   image mapped copy-on-write (the default) and with data segments copied
//!   into each instance (`WPAAS_MEMORY_INIT=copy`, on the same home after a
//!   restart);
//! * `wasmtime-serve` — `wasmtime serve -Scli -Skeyvalue -Sconfig` on the
//!   same `.wasm` (when installed; WAGI programs are not wasi:http
//!   components and are skipped). Python and JavaScript components import
//!   the app's data interfaces, which wpaas links for every process.
//!
//! Writes every number to `target/bench/languages.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use wpaas_tests::load::{
    ensure_wrk, find_wasmtime, utc_now_iso8601, Load, Measured, Ratio, WasmtimeServe,
};
use wpaas_tests::{text, workspace_root, Server};

#[derive(Parser, Debug)]
#[command(
    name = "bench_languages",
    about = "Per language: build times, component size, req/s vs wasmtime serve"
)]
struct Args {
    /// Which languages, comma-separated.
    #[arg(long, default_value = "rust,c,python,js", value_delimiter = ',')]
    languages: Vec<String>,
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 5)]
    duration: u32,
    /// wrk connections (-c).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// wrk threads (-t).
    #[arg(long, default_value_t = 2)]
    threads: u32,
}

/// How a language's app is made, changed and served.
struct Language {
    name: &'static str,
    /// `wpaas new --template` name, or None to copy an example.
    template: Option<&'static str>,
    example: Option<&'static str>,
    /// Files to change for the rebuild, the first that exists.
    sources: &'static [&'static str],
    /// The line appended to it.
    comment: &'static str,
    /// A wasi:http component (`wasmtime serve` can run it).
    component: bool,
}

const LANGUAGES: &[Language] = &[
    Language {
        name: "rust",
        template: Some("rust"),
        example: None,
        sources: &["src/lib.rs", "src/main.rs"],
        comment: "// a one-line change\n",
        component: true,
    },
    Language {
        name: "c",
        template: None,
        example: Some("c-hello"),
        sources: &["hello.c"],
        comment: "/* a one-line change */\n",
        component: false,
    },
    Language {
        name: "python",
        template: Some("python"),
        example: None,
        sources: &["app.py"],
        comment: "# a one-line change\n",
        component: true,
    },
    Language {
        name: "js",
        template: Some("js"),
        example: None,
        sources: &["index.js", "src/index.js"],
        // esbuild drops comments (an unchanged bundle reuses the
        // component), so the change is a statement.
        comment: "globalThis.changedByTheBenchmark = 1;\n",
        component: true,
    },
];

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.duration >= 1, "--duration must be at least 1 second");
    let load = Load {
        wrk: ensure_wrk()?,
        threads: args.threads,
        connections: args.connections,
        duration: args.duration,
        host: None,
        request: None,
    };
    let wasmtime = find_wasmtime();
    println!(
        "wasmtime: {}",
        wasmtime
            .as_ref()
            .map_or("not installed: skipped".into(), |p| p.display().to_string())
    );
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before the runs: {}", loadavg.trim());

    let mut results = Vec::new();
    for name in &args.languages {
        let lang = LANGUAGES
            .iter()
            .find(|l| l.name == name)
            .with_context(|| format!("unknown language {name:?}"))?;
        println!("\n==== {} ====", lang.name);
        match bench_language(lang, &load, wasmtime.as_deref()) {
            Ok(result) => results.push(result),
            Err(e) => {
                println!("!! {}: {e:#}", lang.name);
                results.push(json!({ "language": lang.name, "error": format!("{e:#}") }));
            }
        }
    }

    println!(
        "\n{:<8} {:>9} {:>9} {:>9} {:>10}  {:<15} {:>10} {:>9} {:>9}",
        "lang", "first s", "cold s", "rebuild s", "size KiB", "target", "req/s", "p50 ms", "p99 ms"
    );
    for r in &results {
        if let Some(e) = r.get("error") {
            println!("{:<8} error: {e}", r["language"].as_str().unwrap_or(""));
            continue;
        }
        let first_row = format!(
            "{:<8} {:>9.1} {:>9.1} {:>9.1} {:>10}",
            r["language"].as_str().unwrap_or(""),
            r["first_s"].as_f64().unwrap_or(0.0),
            r["cold_s"].as_f64().unwrap_or(0.0),
            r["rebuild_s"].as_f64().unwrap_or(0.0),
            r["size_bytes"].as_u64().unwrap_or(0) / 1024
        );
        let mut prefix = first_row;
        for t in r["targets"].as_array().into_iter().flatten() {
            println!(
                "{prefix}  {:<15} {:>10.0} {:>9.3} {:>9.3}",
                t["target"].as_str().unwrap_or(""),
                t["requests_per_sec"].as_f64().unwrap_or(0.0),
                t["p50_ms"].as_f64().unwrap_or(0.0),
                t["p99_ms"].as_f64().unwrap_or(0.0),
            );
            prefix = " ".repeat(49);
        }
        for (key, ratio) in r["ratios"].as_object().into_iter().flatten() {
            let x = |k: &str| ratio[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:>49}  {key}: req/s {:.2}x, p50 {:.2}x, p99 {:.2}x",
                "",
                x("requests_per_sec"),
                x("p50_ms"),
                x("p99_ms")
            );
        }
    }

    let report = json!({
        "date": utc_now_iso8601(),
        "loadavg_before": loadavg.trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "wrk": { "threads": args.threads, "connections": args.connections, "duration_s": args.duration },
        "languages": results,
    });
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("languages.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nwrote {}", path.display());
    Ok(())
}

fn bench_language(lang: &Language, load: &Load, wasmtime: Option<&Path>) -> Result<Value> {
    let work = tempfile::tempdir()?;
    let home = work.path().join("home");
    std::fs::create_dir(&home)?;
    let src = make_app(lang, work.path())?;

    let server = Server::start_with_own_caches(&home, &["--no-access-log"])?;
    let first = timed_deploy(&server, &src, "first")?;
    let cold = timed_deploy(&server, &src, "app")?;
    let changed = lang
        .sources
        .iter()
        .map(|s| src.join(s))
        .find(|p| p.is_file())
        .with_context(|| format!("none of {:?} in the new app", lang.sources))?;
    let mut body = std::fs::read_to_string(&changed)?;
    body.push_str(lang.comment);
    std::fs::write(&changed, body)?;
    let rebuild = timed_deploy(&server, &src, "app")?;
    println!(
        "[{}] first {:.1}s, cold {:.1}s, rebuild {:.1}s",
        lang.name,
        first.as_secs_f64(),
        cold.as_secs_f64(),
        rebuild.as_secs_f64()
    );
    let wasm = web_module(&server, "app")?;
    let size = std::fs::metadata(&wasm)?.len();
    // Keep a copy: the slug directory goes with the server's home.
    let component = work.path().join("component.wasm");
    std::fs::copy(&wasm, &component)?;
    println!("[{}] {} ({} KiB)", lang.name, wasm.display(), size / 1024);

    let through_router = Load {
        host: Some("app.localhost".into()),
        ..load.clone()
    };
    let mut runs: Vec<Measured> = Vec::new();
    runs.push(through_router.measure("wpaas", server.router)?);
    drop(server);
    let copying = Server::start_with_own_caches_and_env(
        &home,
        &["--no-access-log"],
        &[("WPAAS_MEMORY_INIT", "copy")],
    )?;
    wait_serving(&copying, "app")?;
    runs.push(through_router.measure("wpaas-copy", copying.router)?);
    drop(copying);

    let mut skipped = Vec::new();
    match (wasmtime, lang.component) {
        (Some(bin), true) => {
            let serve =
                WasmtimeServe::start_with(bin, &component, &["-Scli", "-Skeyvalue", "-Sconfig"])?;
            let measured = load.measure("wasmtime-serve", serve.addr);
            let stderr = serve.stop();
            runs.push(measured.with_context(|| format!("wasmtime serve's stderr:\n{stderr}"))?);
        }
        (None, _) => skipped.push("wasmtime-serve: not installed"),
        (_, false) => skipped.push("wasmtime-serve: a WAGI program, not a wasi:http component"),
    }

    let find = |name: &str| runs.iter().find(|r| r.target == name);
    let mut ratios = serde_json::Map::new();
    if let Some(wpaas) = find("wpaas") {
        for other in ["wpaas-copy", "wasmtime-serve"] {
            if let Some(base) = find(other) {
                let r = Ratio::of(&wpaas.report, &base.report);
                ratios.insert(format!("wpaas/{other}"), r.to_json());
            }
        }
    }
    Ok(json!({
        "language": lang.name,
        "first_s": first.as_secs_f64(),
        "cold_s": cold.as_secs_f64(),
        "rebuild_s": rebuild.as_secs_f64(),
        "size_bytes": size,
        "targets": runs.iter().map(Measured::to_json).collect::<Vec<_>>(),
        "ratios": ratios,
        "skipped": skipped,
    }))
}

/// A new app's source in `dir/src`, made as a user would.
fn make_app(lang: &Language, dir: &Path) -> Result<PathBuf> {
    let src = dir.join("src");
    if let Some(template) = lang.template {
        let out = Command::new(wpaas_tests::wpaas_bin())
            .args(["new", "src", "--template", template])
            .current_dir(dir)
            .env("WPAAS_HOME", dir.join("cli-home"))
            .output()?;
        ensure!(
            out.status.success(),
            "wpaas new --template {template}: {}",
            text(&out)
        );
    } else if let Some(example) = lang.example {
        std::fs::create_dir(&src)?;
        let from = workspace_root().join("examples").join(example);
        let status = Command::new("cp")
            .arg("-r")
            .arg(from.join("."))
            .arg(&src)
            .status()?;
        ensure!(status.success(), "copying {}", from.display());
    }
    Ok(src)
}

/// `wpaas deploy -a APP` in `src`; its wall time.
fn timed_deploy(server: &Server, src: &Path, app: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = server.cli(src, &["deploy", "-a", app]);
    let took = start.elapsed();
    if !out.status.success() {
        bail!("deploy of {app} failed:\n{}", text(&out));
    }
    Ok(took)
}

/// The `.wasm` the app's current release runs as `web`.
fn web_module(server: &Server, app: &str) -> Result<PathBuf> {
    let releases = server.releases(app);
    let current = releases
        .iter()
        .max_by_key(|r| r.version)
        .context("no release")?;
    let digest = current.slug.as_deref().context("release has no slug")?;
    let command = current.command("web").context("no web process type")?;
    let module = command.split_whitespace().next().context("empty command")?;
    let path = server.home.join("slugs/unpacked").join(digest).join(module);
    ensure!(path.is_file(), "{} is not there", path.display());
    Ok(path)
}

/// Waits until `app` answers 200 through the router (after a restart).
fn wait_serving(server: &Server, app: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if server.get(app, "/").status() == 200 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{app} did not serve within 60s of the restart");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
