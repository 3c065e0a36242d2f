//! Writing the entries of a tar stream under a root: files, directories
//! and links only, each checked by [`super::confine`] before it is made.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::confine::{
    check_no_symlink_ancestor, escapes_lexically, resolves_inside, safe_relative,
};
use super::error::{io_err, ArchiveError};
use super::limited::ReadState;
use super::unpack::{UnpackLimits, UnpackStats};

pub(super) fn extract<R: Read>(
    reader: R,
    root: &Path,
    limits: UnpackLimits,
    state: &ReadState,
) -> Result<UnpackStats, ArchiveError> {
    let max_bytes = limits.bytes;
    let stream_error = |e: io::Error| {
        if state.too_large.get() {
            ArchiveError::TooLarge { limit: max_bytes }
        } else if state.gzip_failed.get() {
            ArchiveError::CorruptGzip(e.to_string())
        } else {
            ArchiveError::NotTar(e.to_string())
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let mut declared: u64 = 0;
    let mut symlinks: Vec<(PathBuf, String, String)> = Vec::new();
    let mut entries: u64 = 0;
    for entry in archive.entries().map_err(stream_error)? {
        let mut entry = entry.map_err(stream_error)?;
        entries += 1;
        if entries > limits.entries {
            return Err(ArchiveError::TooManyEntries {
                limit: limits.entries,
            });
        }
        declared = declared.saturating_add(entry.header().entry_size().unwrap_or(0));
        if declared > max_bytes {
            return Err(ArchiveError::TooLarge { limit: max_bytes });
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel = safe_relative(&raw, &shown)?;
        if rel.as_os_str().is_empty() {
            continue; // "./"
        }
        check_no_symlink_ancestor(root, &rel, &shown)?;
        let path = root.join(&rel);
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Directory => {
                if !path.is_dir() {
                    fs::create_dir_all(&path).map_err(io_err(format!("creating {shown}")))?;
                    stats.dirs += 1;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                make_parent(&path, &shown)?;
                remove_existing(&path, &shown)?;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io_err(format!("creating {shown}")))?;
                io::copy(&mut entry, &mut out).map_err(|e| {
                    if state.too_large.get() || state.gzip_failed.get() {
                        stream_error(e)
                    } else {
                        ArchiveError::NotTar(format!("reading {shown}: {e}"))
                    }
                })?;
                set_mode(&path, entry.header().mode().unwrap_or(0o644))
                    .map_err(io_err(format!("setting the mode of {shown}")))?;
                stats.files += 1;
            }
            EntryType::Symlink => {
                let target = link_target(&entry, &shown)?;
                if Path::new(&target).is_absolute() || escapes_lexically(&rel, &target) {
                    return Err(ArchiveError::LinkEscapes {
                        path: shown,
                        target,
                    });
                }
                make_parent(&path, &shown)?;
                remove_existing(&path, &shown)?;
                symlink(&target, &path).map_err(io_err(format!("creating link {shown}")))?;
                symlinks.push((rel.clone(), shown, target));
                stats.links += 1;
            }
            EntryType::Link => {
                let target = link_target(&entry, &shown)?;
                let escape = || ArchiveError::LinkEscapes {
                    path: shown.clone(),
                    target: target.clone(),
                };
                let target_rel = safe_relative(target.as_bytes(), &target).map_err(|_| escape())?;
                check_no_symlink_ancestor(root, &target_rel, &target).map_err(|_| escape())?;
                let source = root.join(&target_rel);
                let is_file = fs::symlink_metadata(&source).is_ok_and(|m| m.is_file());
                if !is_file {
                    return Err(escape());
                }
                make_parent(&path, &shown)?;
                remove_existing(&path, &shown)?;
                fs::hard_link(&source, &path).map_err(io_err(format!("creating link {shown}")))?;
                stats.links += 1;
            }
            EntryType::Char => return Err(special(shown, "character device")),
            EntryType::Block => return Err(special(shown, "block device")),
            EntryType::Fifo => return Err(special(shown, "fifo")),
            _ => return Err(special(shown, "special entry")),
        }
    }
    // Resolve every symlink for real now that the tree is complete: a chain
    // like `a -> .` + `b -> a/../x` escapes although each looks harmless.
    for (rel, shown, target) in symlinks {
        if !resolves_inside(root, &rel) {
            return Err(ArchiveError::LinkEscapes {
                path: shown,
                target,
            });
        }
    }
    // Read to the end so a damaged or oversized tail is noticed.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
    Ok(stats)
}

fn special(path: String, kind: &'static str) -> ArchiveError {
    ArchiveError::SpecialFile { path, kind }
}

fn link_target<R: Read>(entry: &tar::Entry<R>, shown: &str) -> Result<String, ArchiveError> {
    match entry.link_name_bytes() {
        Some(t) => Ok(String::from_utf8_lossy(&t).into_owned()),
        None => Err(ArchiveError::NotTar(format!("link {shown} has no target"))),
    }
}

fn make_parent(path: &Path, shown: &str) -> Result<(), ArchiveError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating the directory of {shown}")))?;
    }
    Ok(())
}

/// A later entry with the same path replaces a file or link (not a directory).
fn remove_existing(path: &Path, shown: &str) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(ArchiveError::Io {
            context: format!("writing {shown}"),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the way"),
        }),
        Ok(_) => fs::remove_file(path).map_err(io_err(format!("replacing {shown}"))),
        Err(_) => Ok(()),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &str, path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn symlink(_target: &str, _path: &Path) -> io::Result<()> {
    Err(io::Error::other(
        "symlinks are not supported on this platform",
    ))
}
