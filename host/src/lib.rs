//! The wpaas host: runs WebAssembly processes and routes HTTP to them.
//!
//! * [`cluster`] — several nodes on one etcd: placement of replicas.
//! * [`runtime`] — the wasmtime engine, compiled-code cache, sandbox limits
//!   and web processes (wasi:http components and WAGI modules).
//! * [`router`] — the HTTP front door: Host-based routing, forwarding
//!   headers, error pages and graceful shutdown.
//! * [`edge`] — what every listener shares: connection caps, header and
//!   idle timeouts, accept back-off, TLS.
//! * [`logs`] — one bounded, persistent log stream per app.
//! * [`metrics`] — request, build and host counters in Prometheus's format.
//! * [`data`] — app data: the durable key-value engine behind wasi:keyvalue.
//! * [`etcd`] — the connection to a cluster's etcd (`wpaas server --cluster`).
//! * [`home`] — every path under `WPAAS_HOME`.
//! * [`respond`] — the server's own answers: text, JSON, line streams.

#![warn(missing_docs)]

pub mod cluster;
pub mod control;
pub mod data;
pub mod edge;
pub mod etcd;
pub mod home;
pub mod logs;
pub mod metrics;
pub mod respond;
pub mod router;
pub mod runtime;
