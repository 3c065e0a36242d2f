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

use std::cell::Cell;
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};

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

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

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

/// Packs `dir` as a deterministic tar.gz, honouring `.gitignore` and
/// `.wpaasignore` (hidden files are included) and skipping `.git/` and
/// `target/` directories at any depth.
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
                && matches!(e.file_name().to_str(), Some(".git") | Some("target"));
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
pub(crate) fn gzip(data: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).map_err(io_err("compressing"))?;
    enc.finish().map_err(io_err("compressing"))
}

/// Shared between the decoding reader and [`unpack`]: why reading stopped.
#[derive(Default)]
struct ReadState {
    bytes: Cell<u64>,
    gzip_failed: Cell<bool>,
    too_large: Cell<bool>,
}

/// Decompresses, counts, and enforces the size limit while streaming.
struct Limited<R: BufRead> {
    inner: GzDecoder<R>,
    limit: u64,
    state: Rc<ReadState>,
}

impl<R: BufRead> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| {
            self.state.gzip_failed.set(true);
        })?;
        let total = self.state.bytes.get() + n as u64;
        self.state.bytes.set(total);
        if total > self.limit {
            self.state.too_large.set(true);
            return Err(io::Error::other("size limit exceeded"));
        }
        Ok(n)
    }
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

fn extract<R: Read>(
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

/// The entry path as a clean relative path (no `.`), or why not.
fn safe_relative(raw: &[u8], shown: &str) -> Result<PathBuf, ArchiveError> {
    let text = String::from_utf8_lossy(raw);
    let path = Path::new(text.as_ref());
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ArchiveError::ParentDir {
                    path: shown.to_string(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ArchiveError::AbsolutePath {
                    path: shown.to_string(),
                })
            }
        }
    }
    Ok(clean)
}

/// Whether a symlink at `rel` pointing at relative `target` climbs above the root.
fn escapes_lexically(rel: &Path, target: &str) -> bool {
    let mut depth = rel.components().count() as i64 - 1; // the link's directory
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// Resolves the symlink at `root/rel` component by component, following
/// links inside the tree, and reports whether it stays inside `root`.
fn resolves_inside(root: &Path, rel: &Path) -> bool {
    let mut stack: Vec<OsString> = rel
        .parent()
        .map(|p| p.iter().map(|s| s.to_os_string()).collect())
        .unwrap_or_default();
    let Ok(target) = fs::read_link(root.join(rel)) else {
        return false;
    };
    let mut budget = 64;
    walk_components(root, &mut stack, &target, &mut budget)
}

fn walk_components(root: &Path, stack: &mut Vec<OsString>, path: &Path, budget: &mut u32) -> bool {
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
            Component::Normal(name) => {
                stack.push(name.to_os_string());
                let here: PathBuf = stack.iter().fold(root.to_path_buf(), |p, s| p.join(s));
                if fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink()) {
                    if *budget == 0 {
                        return false;
                    }
                    *budget -= 1;
                    let Ok(next) = fs::read_link(&here) else {
                        return false;
                    };
                    stack.pop();
                    if !walk_components(root, stack, &next, budget) {
                        return false;
                    }
                }
            }
        }
    }
    true
}

fn check_no_symlink_ancestor(root: &Path, rel: &Path, shown: &str) -> Result<(), ArchiveError> {
    let mut here = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        here.push(c);
        if fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ArchiveError::ThroughSymlink {
                path: shown.to_string(),
            });
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    /// A tar.gz built from raw entries: (path, type, link target, data).
    fn hostile(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, link, data) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            // Write the name raw so tar's own path checks do not interfere.
            h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        gzip(&b.into_inner().unwrap()).unwrap()
    }

    fn unpack_err(data: &[u8]) -> (ArchiveError, tempfile::TempDir) {
        let parent = tempfile::tempdir().unwrap();
        let err = unpack(data, &parent.path().join("app"), MB).unwrap_err();
        // Nothing left behind: no destination, no temporary directory.
        let left: Vec<_> = fs::read_dir(parent.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        (err, parent)
    }

    #[test]
    fn too_many_entries_are_refused_and_nothing_is_left() {
        let names: Vec<String> = (0..11).map(|n| format!("f{n}")).collect();
        let entries: Vec<(&str, EntryType, &str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), EntryType::Regular, "", &b"x"[..]))
            .collect();
        let data = hostile(&entries);
        let parent = tempfile::tempdir().unwrap();
        let limits = |entries| UnpackLimits { bytes: MB, entries };
        let err =
            unpack_limited(data.as_slice(), &parent.path().join("app"), limits(10)).unwrap_err();
        assert!(
            matches!(err, ArchiveError::TooManyEntries { limit: 10 }),
            "{err}"
        );
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
        let stats =
            unpack_limited(data.as_slice(), &parent.path().join("app"), limits(11)).unwrap();
        assert_eq!(stats.files, 11);
    }

    #[test]
    fn round_trip_honours_ignore_files() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("src")).unwrap();
        fs::create_dir_all(s.join("target/release")).unwrap();
        fs::create_dir_all(s.join(".git")).unwrap();
        fs::create_dir_all(s.join("logs")).unwrap();
        fs::write(s.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(s.join("target/release/x.wasm"), "x").unwrap();
        fs::write(s.join(".git/HEAD"), "ref").unwrap();
        fs::write(s.join(".gitignore"), "*.log\n").unwrap();
        fs::write(s.join(".wpaasignore"), "secret.txt\n").unwrap();
        fs::write(s.join(".env.example"), "A=1").unwrap();
        fs::write(s.join("logs/a.log"), "x").unwrap();
        fs::write(s.join("secret.txt"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("src/main.rs", s.join("link.rs")).unwrap();

        let packed = pack(s).unwrap();
        assert_eq!(pack(s).unwrap(), packed, "pack is deterministic");

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("app");
        let stats = unpack(packed.as_slice(), &dest, MB).unwrap();
        assert_eq!(
            fs::read_to_string(dest.join("src/main.rs")).unwrap(),
            "fn main() {}"
        );
        assert!(dest.join(".gitignore").exists());
        assert!(dest.join(".wpaasignore").exists());
        assert!(dest.join(".env.example").exists());
        assert!(!dest.join("target").exists());
        assert!(!dest.join(".git").exists());
        assert!(!dest.join("logs/a.log").exists());
        assert!(!dest.join("secret.txt").exists());
        #[cfg(unix)]
        assert_eq!(
            fs::read_to_string(dest.join("link.rs")).unwrap(),
            "fn main() {}"
        );
        assert!(stats.files >= 4 && stats.links == 1, "{stats:?}");
    }

    #[test]
    fn rejects_non_gzip_and_non_tar() {
        let (err, _d) = unpack_err(b"PK\x03\x04 this is a zip");
        assert!(matches!(err, ArchiveError::NotGzip), "{err}");
        let (err, _d) = unpack_err(b"");
        assert!(matches!(err, ArchiveError::NotGzip), "{err}");
        let (err, _d) = unpack_err(&gzip(&[b'x'; 2048]).unwrap());
        assert!(matches!(err, ArchiveError::NotTar(_)), "{err}");
        let good = hostile(&[("a.txt", EntryType::Regular, "", b"hello")]);
        let (err, _d) = unpack_err(&good[..good.len() / 2]);
        assert!(
            matches!(err, ArchiveError::CorruptGzip(_) | ArchiveError::NotTar(_)),
            "{err}"
        );
    }

    #[test]
    fn rejects_absolute_and_parent_paths() {
        let (err, _d) = unpack_err(&hostile(&[("/etc/passwd", EntryType::Regular, "", b"x")]));
        assert!(matches!(err, ArchiveError::AbsolutePath { .. }), "{err}");
        let (err, _d) = unpack_err(&hostile(&[
            ("ok.txt", EntryType::Regular, "", b"x"),
            ("a/../../evil", EntryType::Regular, "", b"x"),
        ]));
        assert!(matches!(err, ArchiveError::ParentDir { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "archive entry \"a/../../evil\" contains a `..` component"
        );
    }

    #[test]
    fn rejects_links_that_escape() {
        let (err, _d) = unpack_err(&hostile(&[("l", EntryType::Symlink, "/etc/passwd", b"")]));
        assert!(matches!(err, ArchiveError::LinkEscapes { .. }), "{err}");
        let (err, _d) = unpack_err(&hostile(&[("d/l", EntryType::Symlink, "../../x", b"")]));
        assert!(matches!(err, ArchiveError::LinkEscapes { .. }), "{err}");
        let (err, _d) = unpack_err(&hostile(&[("h", EntryType::Link, "../secret", b"")]));
        assert!(matches!(err, ArchiveError::LinkEscapes { .. }), "{err}");
        let (err, _d) = unpack_err(&hostile(&[("h", EntryType::Link, "/etc/passwd", b"")]));
        assert!(matches!(err, ArchiveError::LinkEscapes { .. }), "{err}");
        // Each link looks harmless alone; together they point outside.
        let (err, _d) = unpack_err(&hostile(&[
            ("a", EntryType::Symlink, ".", b""),
            ("b", EntryType::Symlink, "a/../outside", b""),
        ]));
        assert!(matches!(err, ArchiveError::LinkEscapes { .. }), "{err}");
        // Writing through a symlinked directory is refused.
        let (err, _d) = unpack_err(&hostile(&[
            ("d", EntryType::Symlink, "sub", b""),
            ("d/f", EntryType::Regular, "", b"x"),
        ]));
        assert!(matches!(err, ArchiveError::ThroughSymlink { .. }), "{err}");
    }

    #[test]
    fn accepts_links_inside() {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("app");
        let data = hostile(&[
            ("sub/f.txt", EntryType::Regular, "", b"hi"),
            ("sub/l", EntryType::Symlink, "../sub/f.txt", b""),
            ("h", EntryType::Link, "sub/f.txt", b""),
        ]);
        let stats = unpack(data.as_slice(), &dest, MB).unwrap();
        assert_eq!((stats.files, stats.links), (1, 2));
        assert_eq!(fs::read_to_string(dest.join("sub/l")).unwrap(), "hi");
        assert_eq!(fs::read_to_string(dest.join("h")).unwrap(), "hi");
    }

    #[test]
    fn rejects_devices_and_fifos() {
        for (kind, name) in [
            (EntryType::Char, "character device"),
            (EntryType::Block, "block device"),
            (EntryType::Fifo, "fifo"),
        ] {
            let (err, _d) = unpack_err(&hostile(&[("dev", kind, "", b"")]));
            match err {
                ArchiveError::SpecialFile { kind, .. } => assert_eq!(kind, name),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn rejects_oversized_uploads_while_streaming() {
        let big = vec![7u8; 2 * MB as usize];
        let (err, _d) = unpack_err(&hostile(&[("big", EntryType::Regular, "", &big)]));
        assert!(matches!(err, ArchiveError::TooLarge { limit: MB }), "{err}");

        // Data hidden after the end-of-archive marker is declared by no
        // header; it is still counted as it streams in.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "small", &b"x"[..]).unwrap();
        let mut raw = b.into_inner().unwrap();
        raw.extend(std::iter::repeat_n(0u8, 2 * MB as usize));
        let data = gzip(&raw).unwrap();
        assert!(data.len() < 64 * 1024, "compresses well: {}", data.len());
        let (err, _d) = unpack_err(&data);
        assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
        let ok = tempfile::tempdir().unwrap();
        unpack(data.as_slice(), &ok.path().join("app"), 4 * MB).unwrap();
    }

    #[test]
    fn refuses_a_non_empty_destination() {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("keep"), "x").unwrap();
        let data = hostile(&[("a", EntryType::Regular, "", b"x")]);
        let err = unpack(data.as_slice(), out.path(), MB).unwrap_err();
        assert!(matches!(err, ArchiveError::DestinationExists(_)));
        // An empty existing directory is fine.
        let empty = out.path().join("empty");
        fs::create_dir(&empty).unwrap();
        unpack(data.as_slice(), &empty, MB).unwrap();
        assert!(empty.join("a").is_file());
    }
}
