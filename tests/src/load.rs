//! Load generation and peers for the benchmarks: bounded `wrk` runs and
//! their parsed reports, `wasmtime serve` as the peer on the same
//! component, and the small tools they need (a process guard, a free
//! loopback port, dates for the reports).

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

/// Seconds of load before each measured run.
pub const WARMUP_SECS: u32 = 2;

/// How long `wasmtime serve` may take to answer its first request.
const WASMTIME_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `wasmtime-cli` release matching the host's wasmtime.
pub const WASMTIME_CLI_VERSION: &str = "48.0.8";

// ---------------------------------------------------------------------------
// Load generation
// ---------------------------------------------------------------------------

/// How to load a server: `wrk -t THREADS -c CONNECTIONS -d DURATIONs`.
#[derive(Debug, Clone)]
pub struct Load {
    /// The wrk binary.
    pub wrk: PathBuf,
    /// wrk threads (`-t`).
    pub threads: u32,
    /// wrk connections (`-c`).
    pub connections: u32,
    /// Seconds of each measured run.
    pub duration: u32,
    /// A `Host` header to send (the router picks the app by it).
    pub host: Option<String>,
    /// Another method than GET, with this body (sent through a wrk script).
    pub request: Option<(String, String)>,
}

/// One measured run against one target.
pub struct Measured {
    pub target: String,
    pub url: String,
    pub report: WrkReport,
    /// Requests sent by the check and the warm-up before the measured run.
    pub before: Option<u64>,
}

impl Measured {
    pub fn valid(&self) -> bool {
        self.report.non_2xx == 0
            && self.report.requests != Some(0)
            && self.report.requests_per_sec > 0.0
    }

    pub fn note(&self) -> String {
        let mut notes = Vec::new();
        if !self.valid() {
            notes.push(format!(
                "INVALID: {} non-2xx/3xx responses",
                self.report.non_2xx
            ));
        }
        if let Some(e) = &self.report.socket_errors {
            notes.push(format!("socket errors: {e}"));
        }
        notes.join("; ")
    }

    pub fn to_json(&self) -> Value {
        let r = &self.report;
        json!({
            "target": self.target,
            "url": self.url,
            "requests_per_sec": r.requests_per_sec,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "requests": r.requests,
            "elapsed_s": r.elapsed_s,
            "non_2xx_responses": r.non_2xx,
            "socket_errors": r.socket_errors.as_ref().map(|e| json!({
                "connect": e.connect,
                "read": e.read,
                "write": e.write,
                "timeout": e.timeout,
            })),
            "valid": self.valid(),
        })
    }
}

impl Load {
    /// Checks `GET /` answers 200, warms up, then runs the measured load.
    pub fn measure(&self, target: &str, addr: SocketAddr) -> Result<Measured> {
        self.measure_url(target, &format!("http://{addr}/"))
    }

    /// [`Load::measure`] at `url`.
    pub fn measure_url(&self, target: &str, url: &str) -> Result<Measured> {
        let url = url.to_string();
        self.check_ok(&url)
            .with_context(|| format!("{target}: GET {url}"))?;

        println!("[{target}] warm-up: {WARMUP_SECS}s");
        let warm = self.run(&url, WARMUP_SECS)?;
        println!(
            "[{target}] warm-up: {:.2} req/s{}",
            warm.requests_per_sec,
            if warm.non_2xx > 0 {
                format!(" ({} NON-2XX RESPONSES)", warm.non_2xx)
            } else {
                String::new()
            }
        );

        println!(
            "[{target}] measuring: wrk -t {} -c {} -d {}s --latency {url}",
            self.threads, self.connections, self.duration
        );
        let report = self.run(&url, self.duration)?;
        if report.non_2xx > 0 {
            println!(
                "[{target}] !!!!!!!! INVALID RUN: {} non-2xx/3xx responses !!!!!!!!",
                report.non_2xx
            );
        }
        if let Some(e) = &report.socket_errors {
            println!("[{target}] socket errors: {e}");
        }
        Ok(Measured {
            target: target.to_string(),
            url,
            report,
            before: warm.requests.map(|n| n + 1),
        })
    }

    /// One bounded wrk run; prints its output.
    pub fn run(&self, url: &str, seconds: u32) -> Result<WrkReport> {
        let mut cmd = Command::new(&self.wrk);
        cmd.arg("-t")
            .arg(self.threads.to_string())
            .arg("-c")
            .arg(self.connections.to_string())
            .arg("-d")
            .arg(format!("{seconds}s"))
            .arg("--latency");
        if let Some(host) = &self.host {
            cmd.arg("-H").arg(format!("Host: {host}"));
        }
        // wrk sends another method or a body only from a Lua script.
        let script = match &self.request {
            Some((method, body)) => {
                let file = tempfile::Builder::new().suffix(".lua").tempfile()?;
                let lua = format!("wrk.method = {method:?}\nwrk.body = {body:?}\n");
                std::fs::write(file.path(), lua)?;
                cmd.arg("-s").arg(file.path());
                Some(file)
            }
            None => None,
        };
        cmd.arg(url);
        // wrk stops by itself after `seconds`; the bound is for a wedged wrk.
        let limit = Duration::from_secs(u64::from(seconds) + 30);
        let out = run_bounded(&mut cmd, limit)?;
        drop(script);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("wrk failed ({}):\n{stdout}{stderr}", out.status);
        }
        for line in stdout.lines() {
            println!("    | {line}");
        }
        parse_wrk(&stdout).with_context(|| format!("parsing wrk's output:\n{stdout}"))
    }
}

impl Load {
    /// One request as the load sends it, which must answer 200; prints the
    /// first line of the body.
    pub fn check_ok(&self, url: &str) -> Result<()> {
        let mut req = match &self.request {
            Some((method, body)) => crate::client()
                .request(method.parse()?, url)
                .body(body.clone()),
            None => crate::client().get(url),
        };
        if let Some(host) = &self.host {
            req = req.header("host", host);
        }
        let resp = req.send()?;
        let status = resp.status();
        let body = resp.text()?;
        ensure!(status.as_u16() == 200, "status {status}, body {body:?}");
        let method = self.request.as_ref().map_or("GET", |(m, _)| m.as_str());
        println!(
            "{method} {url} -> {status}: {:?}",
            body.lines().next().unwrap_or("")
        );
        Ok(())
    }
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run {cmd:?}"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

/// An executable file called `name` in one of PATH's directories.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `wrk` from PATH, installed with apt-get when missing.
pub fn ensure_wrk() -> Result<PathBuf> {
    if let Some(wrk) = find_on_path("wrk") {
        return Ok(wrk);
    }
    println!("wrk is not installed; running `apt-get update && apt-get install -y wrk`");
    let status = Command::new("sh")
        .args(["-c", "apt-get update && apt-get install -y wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => bail!(
            "wrk is not installed and `apt-get update && apt-get install -y wrk` failed ({s}); \
             install wrk (as root: apt-get install -y wrk) and run the benchmark again"
        ),
        Err(e) => bail!(
            "wrk is not installed and apt-get could not be run ({e}); install wrk and run the \
             benchmark again"
        ),
    }
    find_on_path("wrk").context("apt-get install -y wrk succeeded but wrk is still not on PATH")
}

/// The first line of `wrk -v` (which exits 1 after printing its usage).
pub fn wrk_version(wrk: &Path) -> String {
    Command::new(wrk)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// `wasmtime` from PATH, else from ~/.cargo/bin.
pub fn find_wasmtime() -> Option<PathBuf> {
    find_on_path("wasmtime").or_else(|| {
        let home = std::env::var_os("HOME")?;
        let bin = Path::new(&home).join(".cargo/bin/wasmtime");
        is_executable(&bin).then_some(bin)
    })
}

/// The trimmed output of `BIN --version`.
pub fn command_version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()?;
    ensure!(out.status.success(), "exit status {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/// A child process that is killed (and reaped) when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wasmtime serve -Scli --addr 127.0.0.1:PORT WASM`.
pub struct WasmtimeServe {
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    pub child: ChildGuard,
}

impl WasmtimeServe {
    pub fn start(bin: &Path, wasm: &Path) -> Result<Self> {
        Self::start_with(bin, wasm, &["-Scli"])
    }

    /// `wasmtime serve OPTIONS --addr 127.0.0.1:PORT WASM` (`OPTIONS`:
    /// `-Scli`, `-Skeyvalue`, `-Sconfig-var=K=V`, …).
    pub fn start_with(bin: &Path, wasm: &Path, options: &[&str]) -> Result<Self> {
        let addr = free_loopback_addr()?;
        let mut child = ChildGuard(
            Command::new(bin)
                .arg("serve")
                .args(options)
                .arg("--addr")
                .arg(addr.to_string())
                .arg(wasm)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting wasmtime serve")?,
        );
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.0.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut server = Self {
            addr,
            stderr,
            child,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls `GET /` until it answers 200.
    pub fn wait_ready(&mut self) -> Result<()> {
        let url = format!("http://{}/", self.addr);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()?;
        let deadline = Instant::now() + WASMTIME_READY_TIMEOUT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Some(status) = self.child.0.try_wait()? {
                std::thread::sleep(Duration::from_millis(100));
                bail!(
                    "wasmtime serve exited ({status}); stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            match client.get(&url).send() {
                Ok(resp) if resp.status().as_u16() == 200 => return Ok(()),
                Ok(resp) => last = format!("status {}", resp.status()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "wasmtime serve did not answer 200 on {url} within {WASMTIME_READY_TIMEOUT:?} \
             (last: {last}); stderr:\n{}",
            self.stderr.lock().unwrap()
        )
    }

    /// Kills the server; its stderr.
    pub fn stop(self) -> String {
        let stderr = self.stderr.clone();
        drop(self);
        std::thread::sleep(Duration::from_millis(50));
        let text = stderr.lock().unwrap().clone();
        text
    }
}

/// A loopback address with a port that was free a moment ago.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

// ---------------------------------------------------------------------------
// wrk output
// ---------------------------------------------------------------------------

/// What the benchmark reads from one `wrk --latency` run.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// `N requests in 2.01s, …`
    pub requests: Option<u64>,
    pub elapsed_s: Option<f64>,
    /// `Non-2xx or 3xx responses: N` (0 when absent).
    pub non_2xx: u64,
    /// `Socket errors: connect A, read B, write C, timeout D` when present.
    pub socket_errors: Option<SocketErrors>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

impl std::fmt::Display for SocketErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connect {}, read {}, write {}, timeout {}",
            self.connect, self.read, self.write, self.timeout
        )
    }
}

pub fn parse_wrk(text: &str) -> Result<WrkReport> {
    let mut requests_per_sec = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut requests = None;
    let mut elapsed_s = None;
    let mut non_2xx = 0;
    let mut socket_errors = None;
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(
                v.trim()
                    .parse::<f64>()
                    .with_context(|| format!("bad Requests/sec: {v:?}"))?,
            );
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v
                .trim()
                .parse()
                .with_context(|| format!("bad non-2xx count: {v:?}"))?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            socket_errors = Some(parse_socket_errors(v)?);
        } else if first == "50%" || first == "99%" {
            let v = words.next().unwrap_or("");
            let ms = parse_time_ms(v).with_context(|| format!("bad latency in {line:?}"))?;
            if first == "50%" {
                p50_ms = Some(ms);
            } else {
                p99_ms = Some(ms);
            }
        } else if line.contains(" requests in ") && words.next() == Some("requests") {
            requests = first.parse().ok();
            // `requests in 2.01s, 285.92KB read`
            elapsed_s = words
                .nth(1)
                .map(|w| w.trim_end_matches(','))
                .and_then(parse_time_ms)
                .map(|ms| ms / 1000.0);
        }
    }
    Ok(WrkReport {
        requests_per_sec: requests_per_sec.context("no `Requests/sec:` line")?,
        p50_ms: p50_ms.context("no `50%` latency line (was wrk run with --latency?)")?,
        p99_ms: p99_ms.context("no `99%` latency line (was wrk run with --latency?)")?,
        requests,
        elapsed_s,
        non_2xx,
        socket_errors,
    })
}

/// `connect 0, read 2397, write 0, timeout 0`.
pub fn parse_socket_errors(text: &str) -> Result<SocketErrors> {
    let mut errors = SocketErrors::default();
    for part in text.split(',') {
        let mut kv = part.split_whitespace();
        let (Some(kind), Some(n)) = (kv.next(), kv.next()) else {
            bail!("bad socket errors: {text:?}");
        };
        let n: u64 = n
            .parse()
            .with_context(|| format!("bad socket errors: {text:?}"))?;
        match kind {
            "connect" => errors.connect = n,
            "read" => errors.read = n,
            "write" => errors.write = n,
            "timeout" => errors.timeout = n,
            _ => bail!("unknown socket error kind {kind:?} in {text:?}"),
        }
    }
    Ok(errors)
}

/// A wrk time (`512.00us`, `6.98ms`, `1.02s`, `2.00m`, `1.00h`) in
/// milliseconds.
pub fn parse_time_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(value / 1_000.0),
        "ms" => Some(value),
        "s" => Some(value * 1_000.0),
        "m" => Some(value * 60_000.0),
        "h" => Some(value * 3_600_000.0),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Ratios and dates
// ---------------------------------------------------------------------------

pub struct Ratio {
    pub requests_per_sec: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Ratio {
    pub fn of(a: &WrkReport, b: &WrkReport) -> Self {
        Self {
            requests_per_sec: a.requests_per_sec / b.requests_per_sec,
            p50: a.p50_ms / b.p50_ms,
            p99: a.p99_ms / b.p99_ms,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "requests_per_sec": self.requests_per_sec,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
        })
    }
}

pub fn utc_now_iso8601() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from wrk 4.1.0 (Debian) against `python3 -m http.server` on
    // loopback: `wrk -t2 -c8 -d2s --latency http://127.0.0.1:18431/`.
    const OK: &str = "\
Running 2s test @ http://127.0.0.1:18431/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.91ms    4.41ms  42.41ms   85.16%
    Req/Sec   386.10    129.08   636.00     62.50%
  Latency Distribution
     50%    6.98ms
     75%    9.13ms
     90%   12.30ms
     99%   24.14ms
  1540 requests in 2.01s, 285.92KB read
Requests/sec:    767.73
Transfer/sec:    142.54KB
";

    // The same server, a path it answers 404 for.
    const NOT_FOUND: &str = "\
Running 2s test @ http://127.0.0.1:18431/missing
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.82ms    3.26ms  20.49ms   75.28%
    Req/Sec   664.50    304.47     1.54k    86.67%
  Latency Distribution
     50%    3.86ms
     75%    6.43ms
     90%    9.50ms
     99%   14.84ms
  2051 requests in 2.02s, 1.02MB read
  Non-2xx or 3xx responses: 2051
Requests/sec:   1013.89
Transfer/sec:    514.87KB
";

    // A server that closes every connection after one response.
    const SOCKET_ERRORS: &str = "\
Running 2s test @ http://127.0.0.1:18433/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.61ms    3.69ms  31.90ms   66.29%
    Req/Sec   601.10    120.37     0.87k    67.50%
  Latency Distribution
     50%    6.41ms
     75%    8.42ms
     90%   11.35ms
     99%   17.45ms
  2397 requests in 2.00s, 93.63KB read
  Socket errors: connect 0, read 2397, write 0, timeout 0
Requests/sec:   1196.79
Transfer/sec:     46.75KB
";

    #[test]
    fn parses_a_clean_run() {
        let r = parse_wrk(OK).unwrap();
        assert_eq!(
            r,
            WrkReport {
                requests_per_sec: 767.73,
                p50_ms: 6.98,
                p99_ms: 24.14,
                requests: Some(1540),
                elapsed_s: Some(2.01),
                non_2xx: 0,
                socket_errors: None,
            }
        );
    }

    #[test]
    fn parses_non_2xx_responses() {
        let r = parse_wrk(NOT_FOUND).unwrap();
        assert_eq!(r.non_2xx, 2051);
        assert_eq!(r.requests, Some(2051));
        assert_eq!(r.requests_per_sec, 1013.89);
        assert_eq!((r.p50_ms, r.p99_ms), (3.86, 14.84));
        let m = Measured {
            target: "x".into(),
            url: String::new(),
            report: r,
            before: None,
        };
        assert!(!m.valid());
        assert!(m.note().contains("INVALID"));
    }

    #[test]
    fn parses_socket_errors() {
        let r = parse_wrk(SOCKET_ERRORS).unwrap();
        assert_eq!(
            r.socket_errors,
            Some(SocketErrors {
                connect: 0,
                read: 2397,
                write: 0,
                timeout: 0
            })
        );
        assert_eq!(r.non_2xx, 0);
        assert_eq!(r.requests_per_sec, 1196.79);
    }

    #[test]
    fn rejects_output_without_latency_distribution() {
        let without: String = OK
            .lines()
            .filter(|l| !l.trim_start().starts_with("50%"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_wrk(&without).is_err());
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
    }

    #[test]
    fn converts_time_units_to_ms() {
        assert_eq!(parse_time_ms("512.00us"), Some(0.512));
        assert_eq!(parse_time_ms("6.98ms"), Some(6.98));
        assert_eq!(parse_time_ms("1.50s"), Some(1500.0));
        assert_eq!(parse_time_ms("2.00m"), Some(120_000.0));
        assert_eq!(parse_time_ms("1.00h"), Some(3_600_000.0));
        assert_eq!(parse_time_ms("12"), None);
        assert_eq!(parse_time_ms("fast"), None);
    }

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
