//! App data benchmark: key-value reads, writes and atomic increments made
//! by a guest (examples/kv-counter over `wasi:keyvalue`) through the router,
//! beside SQLite (rusqlite, in this process) doing the same operations with
//! the same durability — the store Spin's key-value is built on — in one run.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_kv -- [--duration 5] [--connections 16]
//! ```
//!
//! wpaas (wrk through the router, each request one guest instance):
//! `GET /` (the same guest without a key-value call: the baseline the
//! others add to), `GET /visits` (get), `PUT /json/k` (set), `POST /visit`
//! (increment). After the increments, the count's growth must equal the
//! 200 answers wrk read, plus at most one request per connection cut off in
//! flight when each run stopped — checked and printed.
//!
//! SQLite: CONNECTIONS threads, each with its own connection to one
//! database file (WAL, `synchronous=FULL`: a commit is on disk, like a
//! wpaas write), for DURATION seconds each of get, set and increment (an
//! `UPDATE … RETURNING` in an immediate transaction), with per-operation
//! latency percentiles. Writes `target/bench/kv.json`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use wpaas_tests::load::{ensure_wrk, utc_now_iso8601, Load, Measured};
use wpaas_tests::{text, workspace_root, Server};

#[derive(Parser, Debug)]
#[command(
    name = "bench_kv",
    about = "Key-value through a guest vs SQLite in process"
)]
struct Args {
    /// Seconds of each measured run.
    #[arg(long, default_value_t = 5)]
    duration: u32,
    /// wrk connections, and SQLite threads.
    #[arg(long, default_value_t = 16)]
    connections: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.duration >= 1 && args.connections >= 2, "bad arguments");
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before the runs: {}", loadavg.trim());

    let work = tempfile::tempdir()?;
    let home = work.path().join("home");
    std::fs::create_dir(&home)?;
    let server = Server::start_with_own_caches(&home, &["--no-access-log"])?;
    let dir = workspace_root().join("examples/kv-counter");
    let out = server.cli(&dir, &["deploy", "-a", "kvb"]);
    ensure!(out.status.success(), "deploy: {}", text(&out));
    server.ok(&dir, &["kv:create", "counter", "-a", "kvb"]);

    let base = Load {
        wrk: ensure_wrk()?,
        threads: 2,
        connections: args.connections,
        duration: args.duration,
        host: Some("kvb.localhost".into()),
        request: None,
    };
    let at = |path: &str| format!("http://{}{path}", server.router);
    let mut wpaas: Vec<Measured> = Vec::new();
    wpaas.push(base.measure_url("guest-only GET /", &at("/"))?);
    wpaas.push(base.measure_url("kv get", &at("/visits"))?);
    let set = Load {
        request: Some(("PUT".into(), r#"{"name":"wpaas","n":1}"#.into())),
        ..base.clone()
    };
    wpaas.push(set.measure_url("kv set", &at("/json/k"))?);
    let before = count(&server)?;
    let increment = Load {
        request: Some(("POST".into(), String::new())),
        ..base.clone()
    };
    let inc = increment.measure_url("kv increment", &at("/visit"))?;
    let after = count(&server)?;
    // Every request counts: the check, the warm-up and the measured run
    // (all answered 200, or the run is invalid).
    ensure!(inc.valid(), "increments: {}", inc.note());
    let answered = inc.report.requests.unwrap_or(0) + inc.before.unwrap_or(0);
    let grew = after - before;
    // wrk counts only the answers it read: a request in flight when a run
    // stops (at most one per connection, two runs) may have counted too.
    let cut = u64::from(2 * args.connections);
    println!(
        "increments answered 200: {answered}; the count grew by {grew} (at most {cut} were cut off in flight)"
    );
    wpaas.push(inc);
    drop(server);

    let sqlite = sqlite_runs(work.path(), args.connections, args.duration)?;

    println!(
        "\n{:<22} {:>10} {:>9} {:>9}",
        "operation", "ops/s", "p50 ms", "p99 ms"
    );
    for m in &wpaas {
        println!(
            "{:<22} {:>10.0} {:>9.3} {:>9.3}  (wpaas, HTTP through the router)",
            m.target, m.report.requests_per_sec, m.report.p50_ms, m.report.p99_ms
        );
    }
    for r in &sqlite {
        println!(
            "{:<22} {:>10.0} {:>9.3} {:>9.3}  (SQLite in process, {} threads)",
            r.name, r.ops_per_sec, r.p50_ms, r.p99_ms, args.connections
        );
    }

    let report = json!({
        "date": utc_now_iso8601(),
        "loadavg_before": loadavg.trim(),
        "connections": args.connections,
        "duration_s": args.duration,
        "wpaas": wpaas.iter().map(Measured::to_json).collect::<Vec<_>>(),
        "increments": { "answered": answered, "count_grew_by": grew, "in_flight_bound": cut },
        "sqlite": sqlite.iter().map(SqliteRun::to_json).collect::<Vec<_>>(),
    });
    let out = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let path = out.join("kv.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nwrote {}", path.display());
    ensure!(
        grew >= answered && grew - answered <= cut,
        "the count grew by {grew} for {answered} answered increments"
    );
    Ok(())
}

/// The visit count, through the guest.
fn count(server: &Server) -> Result<u64> {
    let body = server.get("kvb", "/visits").text()?;
    body.trim()
        .parse()
        .with_context(|| format!("GET /visits: {body:?}"))
}

struct SqliteRun {
    name: &'static str,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl SqliteRun {
    fn to_json(&self) -> Value {
        json!({
            "operation": self.name,
            "ops_per_sec": self.ops_per_sec,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        })
    }
}

fn open(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn sqlite_runs(dir: &Path, threads: u32, seconds: u32) -> Result<Vec<SqliteRun>> {
    let path = dir.join("kv.sqlite");
    let conn = open(&path)?;
    conn.execute_batch(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
         INSERT INTO kv VALUES ('visits', 0);",
    )?;
    drop(conn);
    let value = br#"{"name":"wpaas","n":1}"#.to_vec();
    let mut runs = Vec::new();
    runs.push(sqlite_run("sqlite get", &path, threads, seconds, |c| {
        let _: rusqlite::types::Value =
            c.query_row("SELECT value FROM kv WHERE key = 'visits'", [], |r| {
                r.get(0)
            })?;
        Ok(())
    })?);
    runs.push(sqlite_run(
        "sqlite set",
        &path,
        threads,
        seconds,
        move |c| {
            c.execute(
                "INSERT INTO kv VALUES ('k', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
                [&value],
            )?;
            Ok(())
        },
    )?);
    runs.push(sqlite_run(
        "sqlite increment",
        &path,
        threads,
        seconds,
        |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let _: i64 = tx.query_row(
                "UPDATE kv SET value = value + 1 WHERE key = 'visits' RETURNING value",
                [],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(())
        },
    )?);
    Ok(runs)
}

/// `threads` threads doing `op` on their own connections for `seconds`.
fn sqlite_run(
    name: &'static str,
    path: &Path,
    threads: u32,
    seconds: u32,
    op: impl Fn(&mut rusqlite::Connection) -> Result<()> + Send + Sync + 'static,
) -> Result<SqliteRun> {
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (op, stop, path) = (op.clone(), stop.clone(), path.to_owned());
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut conn = open(&path)?;
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    op(&mut conn)?;
                    latencies.push(start.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(u64::from(seconds)));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a thread panicked"))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let run = SqliteRun {
        name,
        ops_per_sec: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    };
    println!(
        "[{name}] {:.0} ops/s, p50 {:.3} ms, p99 {:.3} ms",
        run.ops_per_sec, run.p50_ms, run.p99_ms
    );
    Ok(run)
}
