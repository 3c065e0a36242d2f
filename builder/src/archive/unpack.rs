//! Unpacking an untrusted tar.gz into a new directory: all or nothing.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;

use super::error::{io_err, ArchiveError};
use super::extract::extract;
use super::limited::{Limited, ReadState};

/// What [`unpack`] extracted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks and hard links created.
    pub links: u64,
    /// Uncompressed bytes read (headers included).
    pub bytes: u64,
}

/// The most entries [`unpack`] accepts in one archive.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// What [`unpack_limited`] reads at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Uncompressed bytes (tar headers included).
    pub bytes: u64,
    /// Entries of any kind, `./` included.
    pub entries: u64,
}

/// Unpacks the tar.gz read from `reader` into `dest` (which must not exist,
/// or be an empty directory), refusing anything unsafe; at most `max_bytes`
/// of uncompressed data and [`DEFAULT_MAX_ENTRIES`] entries are read. On
/// error nothing is left behind.
pub fn unpack(reader: impl Read, dest: &Path, max_bytes: u64) -> Result<UnpackStats, ArchiveError> {
    let limits = UnpackLimits {
        bytes: max_bytes,
        entries: DEFAULT_MAX_ENTRIES,
    };
    unpack_limited(reader, dest, limits)
}

/// [`unpack`] with both limits given.
pub fn unpack_limited(
    reader: impl Read,
    dest: &Path,
    limits: UnpackLimits,
) -> Result<UnpackStats, ArchiveError> {
    let max_bytes = limits.bytes;
    if let Ok(mut entries) = fs::read_dir(dest) {
        if entries.next().is_some() {
            return Err(ArchiveError::DestinationExists(dest.to_path_buf()));
        }
    }
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(io_err("reading the upload"))?;
    if head.len() < 2 || head[..2] != [0x1f, 0x8b] {
        return Err(ArchiveError::NotGzip);
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err(format!("creating {}", parent.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(".wpaas-unpack-")
        .tempdir_in(&parent)
        .map_err(io_err(format!(
            "creating a temporary directory in {}",
            parent.display()
        )))?;

    let state = Rc::new(ReadState::default());
    let decoder = Limited {
        inner: GzDecoder::new(reader),
        limit: max_bytes,
        state: state.clone(),
    };
    let mut stats = extract(decoder, tmp.path(), limits, &state)?;
    // Drain the end-of-archive padding so truncated gzip is noticed.
    stats.bytes = state.bytes.get();

    let built = tmp.keep();
    let _ = fs::remove_dir(dest); // an empty destination is replaced
    if let Err(e) = fs::rename(&built, dest) {
        let _ = fs::remove_dir_all(&built);
        return Err(ArchiveError::Io {
            context: format!("moving the unpacked files to {}", dest.display()),
            source: e,
        });
    }
    Ok(stats)
}
