//! Source uploads: packing a directory as tar.gz and unpacking an untrusted
//! tar.gz safely.
//!
//! [`pack`] honours `.gitignore` and `.wpaasignore` and never includes
//! `.git/` or `target/` directories; entries are sorted and their metadata
//! normalised (mtime 0, uid/gid 0, mode 0644/0755), so the same tree packs
//! to the same bytes. [`pack_tree`] packs several directories of one tree
//! the same way, at their paths below its root.
//!
//! [`unpack`] accepts only regular files, directories and links that stay
//! inside the destination, counts the uncompressed bytes and the entries as
//! it reads (at most [`DEFAULT_MAX_ENTRIES`] unless [`unpack_limited`] says
//! otherwise), and builds the tree in a temporary directory next to the
//! destination that is renamed into place only when everything succeeded.

mod confine;
mod error;
mod extract;
mod limited;
mod pack;
mod unpack;

pub use error::ArchiveError;
pub use pack::pack;
pub(crate) use pack::{all_paths, append_paths, pack_tree, tar_paths};
pub use unpack::{unpack, unpack_limited, UnpackLimits, UnpackStats, DEFAULT_MAX_ENTRIES};

#[cfg(test)]
mod tests;
