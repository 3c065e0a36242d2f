//! The wpaas host: runs WebAssembly processes and routes HTTP to them.
//!
//! * [`runtime`] — the wasmtime engine, compiled-code cache, sandbox limits
//!   and web processes (wasi:http components and WAGI modules).
//! * [`router`] — the HTTP front door: Host-based routing, forwarding
//!   headers, error pages and graceful shutdown.

pub mod control;
pub mod router;
pub mod runtime;
