//! What a component sees of its app's data beyond WASI: `wasi:config/store`
//! (the release's config vars, the same ones it gets as environment
//! variables).
//!
//! Every component process (web, worker, release phase, `run`) links these;
//! a component that does not import them is unaffected.

use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::Linker;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

use super::ProcessEnv;

/// Per-instance state of the data interfaces.
pub(crate) struct GuestData {
    config: Arc<WasiConfigVariables>,
}

impl GuestData {
    /// The state an instance of a process with `env` starts with.
    pub fn new(env: &ProcessEnv) -> Self {
        Self {
            config: Arc::new(
                env.vars
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            ),
        }
    }
}

/// Store state that carries a [`GuestData`].
pub(crate) trait HasGuestData {
    /// The instance's data state.
    fn guest_data(&mut self) -> &mut GuestData;
}

/// Adds `wasi:config/store` to `linker`.
pub(crate) fn add_to_linker<T: HasGuestData + Send + 'static>(
    linker: &mut Linker<T>,
) -> Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |state: &mut T| {
        WasiConfig::new(&state.guest_data().config)
    })
    .map_err(anyhow::Error::from)
}
