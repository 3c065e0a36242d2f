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
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings: the pool is sized for concurrency, not app count —
/// an app that is not serving holds no slot.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Instances (of any app) that may be alive at once.
    pub max_instances: u32,
    /// Upper bound for any app's per-instance memory limit.
    pub max_memory: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory: 1 << 30,
        }
    }
}

/// A shared engine plus the thread that advances its epoch.
pub struct WasmEngine {
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
        // Copy data segments into already-resident memory instead of mapping
        // the image copy-on-write: with CoW every request's first write to a
        // data page faults and flushes TLBs on every core running the host
        // (measured: a third of the CPU time serving examples/hello).
        config.memory_init_cow(false);
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
