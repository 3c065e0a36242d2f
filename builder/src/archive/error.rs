//! What can go wrong packing or unpacking an archive.

use std::io;
use std::path::PathBuf;

/// Why an archive could not be packed or unpacked. [`ArchiveError::Io`]
/// leaves its OS error out of its message (it is the source); show the
/// cause chain.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input does not start with the gzip magic bytes.
    #[error("the upload is not a gzip file (expected a .tar.gz)")]
    NotGzip,
    /// The gzip stream is damaged or truncated.
    #[error("the upload is not a valid gzip stream: {0}")]
    CorruptGzip(String),
    /// The decompressed data is not a tar archive.
    #[error("the upload is not a tar archive: {0}")]
    NotTar(String),
    /// An entry with an absolute path.
    #[error("archive entry {path:?} has an absolute path")]
    AbsolutePath {
        /// The entry's path.
        path: String,
    },
    /// An entry whose path contains `..`.
    #[error("archive entry {path:?} contains a `..` component")]
    ParentDir {
        /// The entry's path.
        path: String,
    },
    /// A symlink or hard link pointing outside the archive (or absolute).
    #[error("archive entry {path:?} links to {target:?}, outside the archive")]
    LinkEscapes {
        /// The link's path.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A device file, fifo or other special entry.
    #[error("archive entry {path:?} is a {kind}; only files, directories and links are allowed")]
    SpecialFile {
        /// The entry's path.
        path: String,
        /// What it is (`character device`, `fifo`, …).
        kind: &'static str,
    },
    /// An entry that would be written through a symlink.
    #[error("archive entry {path:?} is inside a symlinked directory")]
    ThroughSymlink {
        /// The entry's path.
        path: String,
    },
    /// More uncompressed data than allowed.
    #[error("the upload is larger than the limit of {limit} bytes uncompressed")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// More entries (files, directories, links) than allowed.
    #[error("the upload holds more than {limit} entries (files, directories and links); leave dependencies and build output out with .wpaasignore")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// A build's output over the slug size limit.
    #[error("the build output is {}, more than this server's slug limit of {} (wpaas server --max-slug); keep build artifacts and data out of the slug", human(*.size), human(*.limit))]
    SlugTooLarge {
        /// Bytes of the output's files.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The destination already exists with content.
    #[error("{0} already exists and is not empty")]
    DestinationExists(PathBuf),
    /// Walking the source directory failed (unreadable file, bad ignore file).
    #[error("could not read the source directory: {0}")]
    Walk(String),
    /// A filesystem error. The message says what was being done; the OS
    /// error is the source, so a cause chain names it once.
    #[error("{context}")]
    Io {
        /// What was being done (`creating app/src`).
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

/// `1.5 MiB`, `200 KiB`: a size for messages.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / (1 << 10) as f64),
        b => format!("{b} bytes"),
    }
}

pub(super) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}
