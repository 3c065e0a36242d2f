//! The control plane: durable state, the orchestration of builds and
//! releases, and the API that drives them.
//!
//! A deploy, in the order its code runs:
//!
//! * [`server`] — `wpaas server`: opens the store, restores every app,
//!   serves the API, the git endpoint and the router.
//! * [`api`] (with `upload`) — the HTTP API; a deploy's upload is received
//!   and its output streamed back (`log_sink`: bounded client stream and
//!   build log file).
//! * `deploy` — build (buildpack in a [`builds`] slot) → pack the slug →
//!   release it.
//! * [`platform`] — the one way to change what an app runs:
//!   `platform/activate.rs` (pending `vN+1` → load, release phase, health
//!   check → swap the route → record), `platform/formation.rs` (process
//!   types, scaling, limits, restarts), `platform/slugs.rs` (pins and
//!   garbage collection of stored slugs).
//! * [`supervisor`] — keeps long-running processes and one-off runs going;
//!   [`scaler`] moves `web` between its autoscale bounds.
//!
//! Underneath: [`store`] (records), [`config`] (the server's limits),
//! [`keyed_lock`] (one change per app at a time), [`error`] (what the
//! client is told), [`token`] and [`git`] (`git push`), [`metrics`].

pub mod actor;
pub mod api;
#[cfg(test)]
mod api_tests;
pub mod builds;
mod changes;
pub mod config;
pub mod dashboard;
mod deploy;
pub mod error;
pub mod git;
pub mod keyed_lock;
mod kv;
mod log_sink;
pub mod metrics;
pub mod platform;
mod release_output;
pub mod scaler;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod token;
mod upload;
