//! wpaas buildpacks: turn source into a slug of `.wasm` files.
//!
//! * [`archive`] packs a source directory and unpacks untrusted uploads.
//! * [`procfile`] parses and validates Procfiles.
//! * [`source`] finds an app's path dependencies outside its directory,
//!   packs them with it, and locates the app in such an upload.
//! * [`slug`] digests and packs a built slug.
//! * [`buildpack`] detects and runs a buildpack: the build entry point.
//! * [`rust`] is the Rust compile step (also used by `wpaas up`).
//! * [`sandbox`] runs each server-side build step under bubblewrap.
//! * [`sdk`] is the Rust SDK the platform supplies to apps that use it.
//! * [`wit`] is the WIT the server serves, for guest toolchains.

#![warn(missing_docs)]

pub mod archive;
pub mod buildpack;
#[cfg(test)]
mod cause_chains;
mod exec;
pub mod procfile;
pub mod rust;
pub mod sandbox;
pub mod sdk;
pub mod slug;
pub mod source;
mod target;
pub mod wit;
