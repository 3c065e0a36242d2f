//! The contract between `wpaas server` and its clients (the CLI, the tests,
//! the benchmarks, the dashboard): every request and response body of the
//! JSON API, the lines of its streamed answers, the error body, and the
//! parsers both sides share. It does no I/O; the server and the clients
//! bring their own HTTP.
//!
//! Wire rules, kept by the types here:
//! * Bodies are JSON objects; a field this version does not know is
//!   ignored, so adding an optional field is compatible.
//! * Errors are an [`ErrorBody`] with a machine-readable [`ErrorCode`]; the
//!   code alone decides the HTTP status ([`ErrorCode::status`]).
//! * Deploys and one-off runs answer with a stream of text lines whose last
//!   line is a [`stream::RESULT_PREFIX`] plus a JSON result.
#![warn(missing_docs)]

pub mod apps;
pub mod builds;
pub mod error;
pub mod kv;
pub mod logs;
pub mod nodes;
pub mod parse;
pub mod ps;
pub mod releases;
pub mod run;
pub mod stream;

pub use error::{ErrorBody, ErrorCode};
