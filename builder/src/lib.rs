//! wpaas buildpacks: turn source into `.wasm` files.
//!
//! This first cut holds the Rust buildpack's compile step, used by
//! `wpaas up` to build a crate before serving it.

pub mod rust;
pub mod target;
