//! The control plane: durable state, the orchestration of builds and
//! releases, and the API that drives them.

pub mod api;
#[cfg(test)]
mod api_tests;
pub mod builds;
mod changes;
pub mod config;
mod deploy;
pub mod error;
pub mod git;
pub mod keyed_lock;
mod log_sink;
pub mod metrics;
pub mod platform;
pub mod scaler;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod token;
mod upload;
