//! What every guest store gets, whatever kind of process it runs: a memory
//! limit and a wall-clock deadline enforced by epoch interruption.

use std::time::Instant;

use wasmtime::{ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

use super::limits::Limits;

/// Store limits for one instance under `limits`.
pub(crate) fn store_limits(limits: &Limits) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(limits.memory_bytes)
        .table_elements(1 << 20)
        // A failed `memory.grow` returns -1 to the guest, as the spec says;
        // Rust's allocator then aborts, which traps only this instance.
        .trap_on_grow_failure(false)
        .build()
}

/// Store state that carries its [`StoreLimits`].
pub(crate) trait HasLimits {
    /// The limits the store's limiter consults.
    fn limits(&mut self) -> &mut StoreLimits;
}

/// Installs the limiter and the deadline on a fresh store.
///
/// Every epoch tick the running guest yields to the executor (so a
/// CPU-bound guest cannot starve other requests on the same worker thread),
/// and once `deadline` has passed it is interrupted with a trap.
pub(crate) fn confine<T: HasLimits + Send + 'static>(store: &mut Store<T>, deadline: Instant) {
    store.limiter(|state| state.limits() as &mut dyn ResourceLimiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}
