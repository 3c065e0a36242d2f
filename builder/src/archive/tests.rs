//! Packing and unpacking, hostile archives included.

use std::fs;

use tar::{EntryType, Header};

use super::pack::gzip;
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
    let err = unpack_limited(data.as_slice(), &parent.path().join("app"), limits(10)).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooManyEntries { limit: 10 }),
        "{err}"
    );
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    let stats = unpack_limited(data.as_slice(), &parent.path().join("app"), limits(11)).unwrap();
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

#[test]
fn node_modules_is_not_packed_at_any_depth() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "package.json",
        "index.js",
        "node_modules/hono/index.js",
        "web/node_modules/x/y.wasm",
        "lib/node_modules.js",
    ] {
        let path = dir.path().join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let packed = pack(dir.path()).unwrap();
    unpack(packed.as_slice(), &out.path().join("app"), MB).unwrap();
    let app = out.path().join("app");
    assert!(app.join("package.json").is_file());
    assert!(app.join("lib/node_modules.js").is_file());
    assert!(!app.join("node_modules").exists());
    assert!(!app.join("web/node_modules").exists());
    assert!(app.join("web").is_dir());
}
