//! Server memory under big request bodies: `wpaas up` serving the
//! wagi-hello example (WAGI), N parallel POSTs of M MiB each to `/count`,
//! which reads stdin as it streams in and keeps nothing.
//!
//! ```text
//! cargo run --release -p wpaas-tests --bin bench_body -- [--posts 16] [--mib 60] [--wpaas PATH]
//! ```
//!
//! Prints the server's resident memory (VmRSS) before, its peak while the
//! bodies arrive (sampled every 10 ms, and VmHWM) and after. `--wpaas`
//! runs another build of the binary (e.g. one from before bodies
//! streamed) against the same guest, to compare. Loopback only.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use wpaas_tests::{client, example, parse_serving_line, wpaas_bin};

#[derive(Parser, Debug)]
#[command(
    name = "bench_body",
    about = "server RSS under parallel big WAGI POSTs"
)]
struct Args {
    /// Parallel POSTs.
    #[arg(long, default_value_t = 16)]
    posts: usize,
    /// MiB per POST body.
    #[arg(long, default_value_t = 60)]
    mib: u64,
    /// The wpaas binary to measure (default: this workspace's release
    /// build).
    #[arg(long)]
    wpaas: Option<PathBuf>,
}

/// A body of `left` bytes made up on the fly, so the client holds none.
struct Generated {
    left: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b'x');
        self.left -= n as u64;
        Ok(n)
    }
}

/// Resident and peak resident memory of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("malformed status line")?
            .parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let wasm = example("wagi-hello");
    let bin = args
        .wpaas
        .clone()
        .unwrap_or_else(|| wpaas_bin().to_path_buf());
    let home = tempfile::tempdir()?;
    let mut child = Command::new(&bin)
        .arg("up")
        .arg(&wasm)
        .args(["--listen", "127.0.0.1:0", "--no-access-log"])
        .env("WPAAS_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))?;
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().context("piped")?);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            bail!("wpaas up exited before serving");
        }
        if let Some(addr) = parse_serving_line(&line) {
            break addr;
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = format!("http://{addr}/count");
    let http = client();
    ensure!(http.get(format!("http://{addr}/")).send()?.status() == 200);

    let (before, _) = memory_kib(pid)?;
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok((rss, _)) = memory_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let bytes = args.mib << 20;
    let started = Instant::now();
    let posts: Vec<_> = (0..args.posts)
        .map(|_| {
            let (url, http) = (url.clone(), http.clone());
            std::thread::spawn(move || -> Result<String> {
                let body = reqwest::blocking::Body::sized(Generated { left: bytes }, bytes);
                let response = http.post(&url).body(body).send()?;
                let status = response.status();
                let text = response.text()?;
                ensure!(status == 200, "status {status}: {text}");
                Ok(text)
            })
        })
        .collect();
    let mut failures = 0;
    for post in posts {
        match post.join().expect("post thread") {
            Ok(text) if text.starts_with(&format!("bytes={bytes} ")) => {}
            Ok(text) => {
                failures += 1;
                eprintln!("unexpected answer: {text}");
            }
            Err(err) => {
                failures += 1;
                eprintln!("POST failed: {err:#}");
            }
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    std::thread::sleep(Duration::from_millis(200));
    let (after, hwm) = memory_kib(pid)?;
    let _ = child.kill();
    let _ = child.wait();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("binary:  {}", bin.display());
    println!(
        "load:    {} parallel POSTs of {} MiB to WAGI /count in {:.1?} ({} failed)",
        args.posts, args.mib, elapsed, failures
    );
    println!("RSS before:        {:8.1} MiB", mib(before));
    println!(
        "RSS peak sampled:  {:8.1} MiB",
        mib(peak.load(Ordering::Relaxed))
    );
    println!("RSS peak (VmHWM):  {:8.1} MiB", mib(hwm));
    println!("RSS after:         {:8.1} MiB", mib(after));
    println!(
        "growth at peak:    {:8.1} MiB ({:.2} MiB per request)",
        mib(hwm.saturating_sub(before)),
        mib(hwm.saturating_sub(before)) / args.posts as f64
    );
    if failures > 0 {
        std::process::exit(2);
    }
    Ok(())
}
