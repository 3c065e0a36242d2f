//! The control plane: durable state, the orchestration of builds and
//! releases, and the API that drives them.

pub mod api;
pub mod builds;
pub mod config;
pub mod git;
mod log_sink;
pub mod metrics;
pub mod platform;
pub mod scaler;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod token;
mod upload;
