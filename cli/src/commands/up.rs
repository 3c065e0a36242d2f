//! `wpaas up` — the local dev loop: build PATH and serve it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::edge::EdgeArgs;
use wpaas_api::parse::{parse_duration, parse_size};
use wpaas_host::data::{AppKv, KvEngine, Quotas, SledKv, DEFAULT_BUCKET};
use wpaas_host::edge;
use wpaas_host::logs::TerminalAccessLog;
use wpaas_host::router::{self, AppRoute, RouteTable, Router, ServeOptions};
use wpaas_host::runtime::{CacheOutcome, EngineConfig, Limits, ProcessEnv, Runtime};

/// Build and serve an app locally, like `spin up`.
///
/// PATH is a `.wasm`/`.wat` file (a wasi:http component or a WAGI module) or
/// a Rust crate directory, which is built first with `cargo build --release`
/// for wasm32-wasip2 (or wasm32-wasip1 for a WAGI program).
#[derive(clap::Args)]
pub struct Up {
    /// A .wasm file or a Rust crate directory.
    #[arg(default_value = ".")]
    path: PathBuf,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, short = 'l', default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// Environment variable for the app, `KEY=VALUE` (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env_var)]
    env: Vec<(String, String)>,

    /// Memory limit per instance (e.g. 128M, 1G).
    #[arg(long, default_value = "128M", value_parser = parse_size)]
    memory: usize,

    /// Request timeout (e.g. 30s, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,

    /// Requests served at once; more wait in the queue.
    #[arg(long, default_value_t = Limits::default().max_concurrency)]
    concurrency: usize,

    /// Requests that may wait for a slot; beyond it the answer is 503.
    #[arg(long, default_value_t = Limits::default().max_queue)]
    queue: usize,

    /// Largest request body (e.g. 64M); bigger ones are answered 413.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    max_body: usize,

    /// How long a request body may stall mid-way before the answer is 408
    /// (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    body_timeout: Duration,

    /// On Ctrl-C/SIGTERM, how long in-flight requests may still run.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    grace: Duration,

    /// Let the app's outbound HTTP requests reach loopback, private and
    /// link-local addresses (denied by default). For local development only:
    /// the app can then reach every service on this machine and its LAN.
    #[arg(long)]
    allow_private_network: bool,

    /// Attach a key-value bucket besides `default` (repeatable). Data
    /// stays in WPAAS_HOME/data/up/APP between runs.
    #[arg(long = "kv", value_name = "BUCKET")]
    kv: Vec<String>,

    /// Do not print the router's line per request (`app[router]: at=info
    /// method=GET path="/" … status=200`) on stderr.
    #[arg(long)]
    no_access_log: bool,

    // The edges: connection caps and timeouts.
    #[command(flatten)]
    edge: EdgeArgs,
}

impl Up {
    pub fn run(self) -> Result<()> {
        let wasm = self.resolve_wasm()?;
        let limits = Limits {
            memory_bytes: self.memory,
            request_timeout: self.timeout,
            max_concurrency: self.concurrency,
            max_queue: self.queue,
            allow_private_outbound: self.allow_private_network,
            max_request_body: self.max_body as u64,
            body_timeout: self.body_timeout,
            ..Limits::default()
        };
        let engine = EngineConfig {
            max_memory: EngineConfig::default().max_memory.max(self.memory),
            ..EngineConfig::default()
        };
        let runtime = Runtime::new(&engine, crate::home::home()?.compiled_cache())?;

        let file_name = wasm
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app.wasm".into());
        let app = app_name(&wasm);
        let data = self.open_data(&app)?;
        let env = ProcessEnv {
            vars: self.env.clone(),
            dyno: None,
            args: vec![file_name.clone()],
            output: None,
            files: None,
            data: Some(data),
        };
        let started = Instant::now();
        let (web, outcome) = runtime
            .load_web(&wasm, env, limits)
            .with_context(|| format!("could not load {}", wasm.display()))?;
        match outcome {
            CacheOutcome::Hit => eprintln!(
                "-----> Loaded {file_name} ({}) from the compiled-code cache in {:.0?}",
                web.kind(),
                started.elapsed()
            ),
            CacheOutcome::Miss => eprintln!(
                "-----> Compiled {file_name} ({}) in {:.1?}; cached for next time",
                web.kind(),
                started.elapsed()
            ),
        }

        let table = Arc::new(RouteTable::new());
        table.set_app(AppRoute {
            name: app.clone(),
            web: Some(Arc::new(web)),
        });
        table.set_default(Some(&app));
        let mut router = Router::new(table);
        if !self.no_access_log {
            router = router.with_observer(Arc::new(TerminalAccessLog::start()?));
        }
        let router = Arc::new(router);

        let limits = self
            .edge
            .limits()
            .fit_open_files(edge::raise_open_files_limit(), 1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = edge::bind(self.listen).with_context(|| {
                format!(
                    "could not listen on {}; is another server using it? Try --listen 127.0.0.1:0",
                    self.listen
                )
            })?;
            let addr = listener.local_addr()?;
            // Tests and scripts read this line to find the bound port.
            println!(
                "Serving {app} on http://{addr} (also http://{app}.localhost:{})",
                addr.port()
            );
            println!("Press Ctrl-C to stop.");
            router::serve(
                listener,
                router,
                crate::signals::shutdown_signal(),
                ServeOptions {
                    grace: self.grace,
                    limits,
                    tls: None,
                },
            )
            .await?;
            eprintln!("Stopped.");
            Ok(())
        })
    }

    /// The app's key-value data: bucket `default` (what `open("")` opens,
    /// as under `wasmtime serve -Skeyvalue`) and each `--kv` bucket, in a
    /// store of its own so a running `wpaas server` does not hold it.
    fn open_data(&self, app: &str) -> Result<AppKv> {
        let dir = crate::home::home()?.up_kv(app);
        let kv = SledKv::open(&dir, Quotas::default()).map_err(|e| {
            anyhow::anyhow!(
                "could not open the key-value data in {}: {e}\n\
                 hint: is another `wpaas up` of {app} running?",
                dir.display()
            )
        })?;
        for bucket in std::iter::once(DEFAULT_BUCKET).chain(self.kv.iter().map(String::as_str)) {
            kv.create_bucket(app, bucket)?;
        }
        Ok(AppKv::new(Arc::new(kv), app))
    }

    /// The `.wasm` to serve: PATH itself, or what building the crate made.
    fn resolve_wasm(&self) -> Result<PathBuf> {
        let path = &self.path;
        if path.is_file() {
            return Ok(path.clone());
        }
        if path.join("Cargo.toml").is_file() {
            eprintln!("-----> Rust app detected in {}", path.display());
            let built = wpaas_builder::rust::build_crate(path, &mut |line| {
                eprintln!("       {line}");
            })?;
            return Ok(built.wasm);
        }
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
        bail!(
            "{} is neither a .wasm file nor a Rust crate (no Cargo.toml)",
            path.display()
        )
    }
}

fn parse_env_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// An app name for the Host router: the file stem, lower-cased, with
/// anything outside `[a-z0-9-]` turned into `-`.
fn app_name(wasm: &Path) -> String {
    let stem = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "app".into()
    } else {
        name
    }
}
