//! The one wasmtime [`Engine`] a host runs, and its epoch ticker.
//!
//! Lifecycle: built once at host start-up. Everything per app (compiling,
//! linking) happens at activation; the request path only instantiates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Deadlines are counted in these ticks, and a
/// CPU-bound guest yields to the executor once per tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings: the pool is sized for concurrency, not app count —
/// an app that is not serving holds no slot.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Instances (of any app) that may be alive at once. A request that
    /// finds the pool full is answered 503 at once.
    pub max_instances: u32,
    /// Instances one app's web process may hold at once, over all its
    /// replicas (and over an old release still draining): its fair share
    /// of the pool, so that one flooded app cannot starve the others.
    /// Beyond it the app's requests are answered 503 at once.
    pub app_instances: u32,
    /// Upper bound for any app's per-instance memory limit.
    pub max_memory: usize,
    /// Bytes the host may hold buffered for guests at once, server-wide:
    /// WAGI responses (CGI output is parsed before it is sent). A response
    /// that would grow past what is left is answered 503.
    pub buffer_budget: usize,
    /// How a module's memory image reaches each new instance.
    pub memory_init: MemoryInit,
}

/// How an instance's linear memory gets the module's data segments.
///
/// Measured side by side (`bench_languages`, 2 cores, wrk -c 16, one run):
/// with copy-on-write a Python hello (an 18 MB component whose heap image
/// componentize-py snapshots at build time) served 573 against 363 req/s
/// copied, a JavaScript hello (12.7 MB, StarlingMonkey) 3,553 against
/// 1,061; a Rust hello (106 KiB) and a C WAGI program (30 KiB) were within
/// noise of each other either way (20,247 vs 19,960 and 21,478 vs 19,340).
/// Copying costs every request the whole image; mapping costs only the
/// pages a request writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryInit {
    /// Copy the data segments into an already-resident memory slot on
    /// every instantiation (`WPAAS_MEMORY_INIT=copy`).
    Copy,
    /// Map the module's image copy-on-write from a memfd (the default):
    /// instantiation costs the same whatever the image's size.
    Cow,
}

impl MemoryInit {
    /// `copy` or `cow`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "copy" => Some(Self::Copy),
            "cow" => Some(Self::Cow),
            _ => None,
        }
    }
}

/// Instances in the pool unless `WPAAS_MAX_INSTANCES` says otherwise.
pub(crate) const DEFAULT_MAX_INSTANCES: u32 = 1000;

impl Default for EngineConfig {
    /// The defaults: 1000 instances, a quarter of them per app, 1 GiB of
    /// memory per instance at most, 256 MiB of buffers, data segments
    /// mapped copy-on-write (`WPAAS_MEMORY_INIT=copy` copies them). The
    /// operator may
    /// change the pool with `WPAAS_MAX_INSTANCES`, the per-app share with
    /// `WPAAS_APP_INSTANCES` and the buffer budget with
    /// `WPAAS_BUFFER_BUDGET` (a size: `512M`).
    fn default() -> Self {
        let number = |name: &str| {
            let value = std::env::var(name).ok()?;
            match value.trim().parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!("ignoring {name}={value:?}: expected a positive number");
                    None
                }
            }
        };
        let max_instances = number("WPAAS_MAX_INSTANCES").unwrap_or(DEFAULT_MAX_INSTANCES);
        let app_instances = number("WPAAS_APP_INSTANCES")
            .unwrap_or(max_instances / 4)
            .clamp(1, max_instances);
        let buffer_budget = std::env::var("WPAAS_BUFFER_BUDGET")
            .ok()
            .and_then(|v| super::limits::parse_size(&v).ok())
            .unwrap_or(256 << 20);
        let memory_init = match std::env::var("WPAAS_MEMORY_INIT") {
            Ok(value) => MemoryInit::parse(&value).unwrap_or_else(|| {
                tracing::warn!("ignoring WPAAS_MEMORY_INIT={value:?}: expected copy or cow");
                MemoryInit::Cow
            }),
            Err(_) => MemoryInit::Cow,
        };
        Self {
            max_instances,
            app_instances,
            max_memory: 1 << 30,
            buffer_budget,
            memory_init,
        }
    }
}

/// A shared engine plus the thread that advances its epoch.
pub(crate) struct WasmEngine {
    engine: Engine,
    ticker_stop: Arc<AtomicBool>,
}

impl WasmEngine {
    /// Builds the engine and starts its single epoch ticker thread.
    pub fn new(settings: &EngineConfig) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Guests overflowing their stack trap cleanly at this depth.
        config.max_wasm_stack(1 << 20);
        config.async_stack_size(2 << 20);
        // See MemoryInit for the trade-off.
        config.memory_init_cow(settings.memory_init == MemoryInit::Cow);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(settings)));
        let engine = Engine::new(&config)
            .or_else(|err| {
                // Some sandboxes cap virtual memory; fall back to on-demand
                // allocation rather than refusing to start.
                tracing::warn!("pooling allocator unavailable ({err:#}); using on-demand");
                let mut config = config.clone();
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config)
            })
            .map_err(anyhow::Error::from)
            .context("could not create the wasm engine")?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("wpaas-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .context("could not start the epoch ticker")?;
        Ok(Self {
            engine,
            ticker_stop,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn pooling(settings: &EngineConfig) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    let n = settings.max_instances;
    // A Rust wasm32-wasip2 component holds a handful of core instances
    // (main module, adapters, shims); size the core pools accordingly.
    pool.total_component_instances(n)
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(settings.max_memory)
        // Keep the first 16 MiB of each memory slot mapped and reset it in
        // place instead
        // of madvise + fresh page faults on the next request. Rust guests
        // start with a 1 MiB stack plus data; 1 MiB measured 40% slower.
        // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), only the pages the
        // guest dirtied are reset rather than the whole region.
        .linear_memory_keep_resident(16 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .table_keep_resident(64 << 10)
        .max_unused_warm_slots(n / 10 + 16);
    pool
}
