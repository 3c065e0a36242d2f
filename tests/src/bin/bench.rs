//! HTTP throughput benchmark: `wpaas up` serving the hello example, against
//! a native hyper hello-world server and (when installed) `wasmtime serve`
//! running the same component.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench -- [--duration 10] [--connections 32] [--threads 2] [--component APP.wasm]
//! ```
//!
//! `--component` measures another component in place of the hello example
//! (e.g. a Python app's `app.wasm`, to compare languages side by side).
//!
//! Every server is a separate process listening on loopback, started one
//! after the other (never two at once) and stopped before the next starts.
//! Each gets a 2-second `wrk` warm-up, then the measured run
//! `wrk -t THREADS -c CONNECTIONS -d DURATIONs --latency http://ADDR/`.
//! The results are printed as a table and written to
//! `target/bench/http.json`. A run that saw non-2xx responses is invalid:
//! it is flagged and the benchmark exits with status 2.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use wpaas_tests::load::{
    command_version, ensure_wrk, find_wasmtime, utc_now_iso8601, wrk_version, ChildGuard, Load,
    Measured, Ratio, WasmtimeServe, WARMUP_SECS, WASMTIME_CLI_VERSION,
};

/// The body of the native baseline: the same length as the hello example's
/// `Hello from wpaas! (GREETING=unset)\n`.
const NATIVE_BODY: &[u8] = b"Hello from hyper! (GREETING=unset)\n";

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "HTTP throughput: wpaas vs native hyper vs wasmtime serve (loopback, wrk)"
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
    /// A wasi:http component to serve instead of examples/hello (wpaas and
    /// wasmtime serve run the same file).
    #[arg(long)]
    component: Option<PathBuf>,
    /// Internal: serve the native hyper baseline and print `listening on ADDR`.
    #[arg(long, hide = true)]
    native_server: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.native_server {
        return native::serve();
    }
    ensure!(args.duration >= 1, "--duration must be at least 1 second");
    ensure!(args.threads >= 1, "--threads must be at least 1");
    ensure!(
        args.connections >= args.threads,
        "--connections ({}) must be at least --threads ({})",
        args.connections,
        args.threads
    );

    let wrk = ensure_wrk()?;
    let wrk_version = wrk_version(&wrk);
    println!("wrk: {wrk_version}");

    println!("building wpaas and the guest examples (cargo, examples/build.sh)…");
    let wpaas = wpaas_tests::wpaas_bin();
    let hello = match &args.component {
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("{}", path.display()))?,
        None => wpaas_tests::example("hello"),
    };
    println!("wpaas: {}", wpaas.display());
    println!("hello: {}", hello.display());

    let wasmtime = find_wasmtime();
    let wasmtime_version = match &wasmtime {
        Some(bin) => {
            let version = command_version(bin)
                .with_context(|| format!("`{} --version` failed", bin.display()))?;
            println!("wasmtime: {version} ({})", bin.display());
            Some(version)
        }
        None => {
            println!(
                "wasmtime: not found on PATH nor in ~/.cargo/bin; `wasmtime serve` will be \
                 skipped (install it with `cargo install wasmtime-cli --version \
                 {WASMTIME_CLI_VERSION} --locked`)"
            );
            None
        }
    };

    let load = Load {
        wrk: wrk.clone(),
        threads: args.threads,
        connections: args.connections,
        duration: args.duration,
        host: None,
        request: None,
    };
    let date = utc_now_iso8601();
    // Other work on the machine skews every number: record how busy it was.
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!("load average before the runs: {loadavg}");
    let mut runs: Vec<Measured> = Vec::new();
    let mut skipped: Vec<Value> = Vec::new();

    // (a) wpaas up, hello example.
    {
        println!("\n== wpaas ==");
        let server = wpaas_tests::UpServer::start(&hello, &["--no-access-log"])
            .context("starting wpaas up")?;
        println!("wpaas up serving on {}", server.addr);
        let measured = load.measure("wpaas", server.addr);
        let stderr = server.stop();
        match measured {
            Ok(m) => runs.push(m),
            Err(e) => {
                return Err(e.context(format!("measuring wpaas; its stderr:\n{stderr}")));
            }
        }
    }

    // (b) the native hyper baseline: this binary, re-executed.
    {
        println!("\n== native (hyper) ==");
        let server = NativeServer::start()?;
        println!("native hyper server on {}", server.addr);
        runs.push(load.measure("native", server.addr)?);
        drop(server);
    }

    // (c) wasmtime serve, hello example.
    if let Some(bin) = &wasmtime {
        println!("\n== wasmtime serve ==");
        match WasmtimeServe::start(bin, &hello) {
            Ok(server) => {
                println!("wasmtime serve on {}", server.addr);
                let measured = load.measure("wasmtime-serve", server.addr);
                let stderr = server.stop();
                runs.push(
                    measured.with_context(|| {
                        format!("measuring wasmtime serve; its stderr:\n{stderr}")
                    })?,
                );
            }
            Err(e) => {
                println!("!! wasmtime serve could not be started, skipped: {e:#}");
                skipped.push(json!({ "target": "wasmtime-serve", "reason": format!("{e:#}") }));
            }
        }
    } else {
        skipped.push(json!({
            "target": "wasmtime-serve",
            "reason": format!(
                "wasmtime not installed (cargo install wasmtime-cli --version {WASMTIME_CLI_VERSION} --locked)"
            ),
        }));
    }

    // Results.
    println!(
        "\nwrk -t {} -c {} -d {}s --latency (after a {}s warm-up), {}",
        args.threads, args.connections, args.duration, WARMUP_SECS, date
    );
    println!(
        "{:<16} {:>12} {:>10} {:>10}  note",
        "target", "req/s", "p50 ms", "p99 ms"
    );
    for run in &runs {
        let line = format!(
            "{:<16} {:>12.2} {:>10.3} {:>10.3}  {}",
            run.target,
            run.report.requests_per_sec,
            run.report.p50_ms,
            run.report.p99_ms,
            run.note()
        );
        println!("{}", line.trim_end());
    }
    let find = |name: &str| runs.iter().find(|r| r.target == name);
    let mut ratios = serde_json::Map::new();
    if let Some(wpaas) = find("wpaas") {
        for other in ["native", "wasmtime-serve"] {
            if let Some(base) = find(other) {
                let key = format!("wpaas/{other}");
                let r = Ratio::of(&wpaas.report, &base.report);
                println!(
                    "{key:<22} req/s {:.3}x   p50 {:.3}x   p99 {:.3}x",
                    r.requests_per_sec, r.p50, r.p99
                );
                ratios.insert(key, r.to_json());
            }
        }
    }

    let report = json!({
        "date": date,
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavg_before": loadavg,
        },
        "wrk": {
            "version": wrk_version,
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": WARMUP_SECS,
            "command": format!(
                "wrk -t {} -c {} -d {}s --latency http://ADDR/",
                args.threads, args.connections, args.duration
            ),
        },
        "wasmtime_version": wasmtime_version,
        "targets": runs.iter().map(Measured::to_json).collect::<Vec<_>>(),
        "ratios": ratios,
        "skipped": skipped,
        "valid": runs.iter().all(Measured::valid),
    });
    let dir = wpaas_tests::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("http.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwrote {}", path.display());

    let invalid: Vec<&str> = runs
        .iter()
        .filter(|r| !r.valid())
        .map(|r| r.target.as_str())
        .collect();
    if !invalid.is_empty() {
        eprintln!(
            "\n!!!!!!!! INVALID BENCHMARK: {} saw non-2xx responses (or no requests); \
             their numbers are not throughput !!!!!!!!",
            invalid.join(", ")
        );
        std::process::exit(2);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------
/// The native baseline: this binary re-executed with `--native-server`.
struct NativeServer {
    addr: SocketAddr,
    // Declared before the guard: its pipe closes first, and the server
    // exits on EOF even if the kill were missed.
    _stdin: Option<ChildStdin>,
    _child: ChildGuard,
}

impl NativeServer {
    fn start() -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut child = ChildGuard(
            Command::new(exe)
                .arg("--native-server")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting the native server")?,
        );
        let stdin = child.0.stdin.take();
        let stdout = child.0.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines.map_while(Result::ok) {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => bail!("the native server exited before printing its address"),
            Err(_) => bail!("the native server printed no address within 30s"),
        };
        let addr = native::parse_listening_line(&line)
            .with_context(|| format!("unexpected first line from the native server: {line:?}"))?;
        Ok(Self {
            addr,
            _stdin: stdin,
            _child: child,
        })
    }
}

// ---------------------------------------------------------------------------
// The native hyper server (the child process)
// ---------------------------------------------------------------------------

mod native {
    use std::convert::Infallible;
    use std::io::{Read, Write};
    use std::net::SocketAddr;

    use anyhow::Result;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::header::{HeaderValue, CONTENT_TYPE};
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    use super::NATIVE_BODY;

    /// `listening on ADDR`.
    pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
        line.trim().strip_prefix("listening on ")?.parse().ok()
    }

    async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let mut resp = Response::new(Full::new(Bytes::from_static(NATIVE_BODY)));
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Ok(resp)
    }

    /// Serves HTTP/1.1 (keep-alive) on 127.0.0.1:0 with tokio's
    /// multi-thread runtime until stdin reaches EOF (the parent went away).
    pub fn serve() -> Result<()> {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening on {}", listener.local_addr()?)?;
            stdout.flush()?;
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        eprintln!("native server: accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(hello))
                        .await;
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_native_servers_line() {
        assert_eq!(
            native::parse_listening_line("listening on 127.0.0.1:4321\n"),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(native::parse_listening_line("hello"), None);
    }
}
