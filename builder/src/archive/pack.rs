//! Packing: a directory, or parts of a tree, as a deterministic tar.gz.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};

use super::error::{io_err, ArchiveError};

/// Packs `dir` as a deterministic tar.gz, honouring `.gitignore` and
/// `.wpaasignore` (hidden files are included) and skipping `.git/`,
/// `target/` and `node_modules/` directories at any depth (a JavaScript
/// app's dependencies are installed on the server).
pub fn pack(dir: &Path) -> Result<Vec<u8>, ArchiveError> {
    gzip(&tar_paths(dir, &source_paths(dir)?)?)
}

/// Packs parts of the tree at `root` as one deterministic tar.gz: each of
/// `dirs` walked as [`pack`] walks a directory, then each of `files`, all
/// stored at their paths relative to `root`; then the `generated` files
/// (path, contents), mode 0644.
pub(crate) fn pack_tree(
    root: &Path,
    dirs: &[PathBuf],
    files: &[PathBuf],
    generated: &[(PathBuf, Vec<u8>)],
) -> Result<Vec<u8>, ArchiveError> {
    let mut paths = Vec::new();
    for dir in dirs {
        if dir.as_os_str().is_empty() {
            paths.extend(source_paths(root)?);
        } else {
            paths.push(dir.clone());
            paths.extend(
                source_paths(&root.join(dir))?
                    .into_iter()
                    .map(|p| dir.join(p)),
            );
        }
    }
    paths.extend(files.iter().cloned());
    let mut builder = tar::Builder::new(Vec::new());
    append_paths(&mut builder, root, &paths)?;
    for (path, data) in generated {
        let mut header = normalised_header();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, path, data.as_slice())
            .map_err(io_err(format!("packing {}", path.display())))?;
    }
    gzip(&builder.into_inner().map_err(io_err("finishing the tar"))?)
}

/// The paths under `dir` that an upload holds (see [`pack`]), relative to
/// `dir`, sorted.
fn source_paths(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .ignore(false)
        .add_custom_ignore_filename(".wpaasignore")
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| {
            let skip = e.depth() > 0
                && e.file_type().is_some_and(|t| t.is_dir())
                && matches!(
                    e.file_name().to_str(),
                    Some(".git") | Some("target") | Some("node_modules")
                );
            !skip
        })
        .build();
    let mut paths = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| ArchiveError::Walk(e.to_string()))?;
        if entry.depth() == 0 {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map_err(|e| ArchiveError::Walk(e.to_string()))?
            .to_path_buf();
        paths.push(rel);
    }
    Ok(paths)
}

/// Every path under `dir` (nothing ignored), sorted.
pub(crate) fn all_paths(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    let mut paths = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| ArchiveError::Walk(e.to_string()))?;
        if entry.depth() > 0 {
            if let Ok(rel) = entry.path().strip_prefix(dir) {
                paths.push(rel.to_path_buf());
            }
        }
    }
    Ok(paths)
}

/// A tar of `paths` (relative to `dir`) in the given order with normalised
/// metadata: mtime 0, uid/gid 0, no user names, mode 0755 for directories
/// and executables, 0644 otherwise.
pub(crate) fn tar_paths(dir: &Path, paths: &[PathBuf]) -> Result<Vec<u8>, ArchiveError> {
    let mut builder = tar::Builder::new(Vec::new());
    append_paths(&mut builder, dir, paths)?;
    builder.into_inner().map_err(io_err("finishing the tar"))
}

fn normalised_header() -> Header {
    let mut header = Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Appends `paths` (relative to `dir`) as [`tar_paths`] describes.
pub(crate) fn append_paths<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    paths: &[PathBuf],
) -> Result<(), ArchiveError> {
    for rel in paths {
        let full = dir.join(rel);
        let meta =
            fs::symlink_metadata(&full).map_err(io_err(format!("reading {}", full.display())))?;
        let mut header = normalised_header();
        let fail = io_err(format!("packing {}", rel.display()));
        if meta.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, rel, io::empty())
                .map_err(fail)?;
        } else if meta.file_type().is_symlink() {
            let target =
                fs::read_link(&full).map_err(io_err(format!("reading link {}", full.display())))?;
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_link(&mut header, rel, target)
                .map_err(fail)?;
        } else if meta.is_file() {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(if is_executable(&meta) { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            let file =
                fs::File::open(&full).map_err(io_err(format!("reading {}", full.display())))?;
            builder.append_data(&mut header, rel, file).map_err(fail)?;
        }
        // Sockets, fifos and devices in a source tree are skipped.
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

/// gzip-compresses `data` (no timestamp, so deterministic).
pub(super) fn gzip(data: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).map_err(io_err("compressing"))?;
    enc.finish().map_err(io_err("compressing"))
}
