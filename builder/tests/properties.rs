//! Property tests for the parsers that face users: the Procfile and the
//! confinement of uploaded tar archives. Each property holds for every input
//! proptest can think of, not just the examples in the unit tests.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use proptest::prelude::*;
use wpaas_builder::archive;
use wpaas_builder::procfile::{valid_type_name, Procfile, MAX_TYPE_LEN};

// ---------------------------------------------------------------------------
// Procfile

fn type_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9_-]{1,63}").unwrap()
}

/// An argument with spaces, quotes, backslashes, `$` and non-ASCII in it.
fn argument() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 '\"\\\\$=.,é-]{1,12}").unwrap()
}

/// Quotes `arg` so the Procfile's shell-style splitter gives it back.
fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text either parses or is refused with an error naming a line; the
    /// parser never panics, and what it accepts obeys the documented rules.
    #[test]
    fn procfile_parse_never_panics(text in "(?s).{0,400}") {
        match Procfile::parse(&text) {
            Ok(p) => {
                prop_assert!(!p.types.is_empty());
                let mut seen = BTreeSet::new();
                for t in &p.types {
                    prop_assert!(valid_type_name(&t.name) && t.name.len() <= MAX_TYPE_LEN);
                    prop_assert!(seen.insert(t.name.clone()), "duplicate {}", t.name);
                    prop_assert!(t.wasm.ends_with(".wasm"));
                    let path = Path::new(&t.wasm);
                    prop_assert!(path.is_relative());
                    prop_assert!(path.components().all(|c| matches!(c, Component::Normal(_))),
                        "module path {:?} escapes", t.wasm);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.contains('\n'), "one-line message: {msg}");
            }
        }
    }

    /// Arguments written with shell quoting come back exactly, whatever they
    /// contain; the parsed Procfile printed and parsed again is the same.
    #[test]
    fn procfile_arguments_round_trip(
        types in proptest::collection::btree_map(type_name(), proptest::collection::vec(argument(), 0..4), 1..5),
        module in "[a-z]{1,8}(/[a-z]{1,8}){0,2}",
    ) {
        let text: String = types
            .iter()
            .map(|(name, args)| {
                let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
                format!("{name}: {module}.wasm {}\n", quoted.join(" "))
            })
            .collect();
        let parsed = Procfile::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.types.len(), types.len());
        for (t, (name, args)) in parsed.types.iter().zip(&types) {
            prop_assert_eq!(&t.name, name);
            prop_assert_eq!(&t.wasm, &format!("{module}.wasm"));
            prop_assert_eq!(&t.args, args);
        }
        let again = Procfile::parse(&parsed.to_string()).unwrap();
        prop_assert_eq!(&again.types.iter().map(|t| (&t.name, &t.args)).collect::<Vec<_>>(),
                        &parsed.types.iter().map(|t| (&t.name, &t.args)).collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------
// Tar confinement

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    Symlink(String),
    HardLink(String),
    Fifo,
    CharDevice,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    kind: Kind,
}

/// Paths made of the pieces that cause trouble: `..`, `.`, empty segments,
/// leading `/`, and a few names that repeat so later entries meet earlier
/// ones (a file where a symlink was, a file under a symlinked directory).
fn hostile_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        4 => Just("a".to_string()),
        3 => Just("b".to_string()),
        2 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => Just("outside".to_string()),
        1 => Just("canary.txt".to_string()),
    ];
    (any::<bool>(), proptest::collection::vec(segment, 1..5)).prop_map(|(abs, segs)| {
        let joined = segs.join("/");
        if abs {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    let kind = prop_oneof![
        4 => Just(Kind::File),
        2 => Just(Kind::Dir),
        3 => hostile_path().prop_map(Kind::Symlink),
        1 => hostile_path().prop_map(Kind::HardLink),
        1 => Just(Kind::Fifo),
        1 => Just(Kind::CharDevice),
    ];
    (hostile_path(), kind).prop_map(|(path, kind)| Entry { path, kind })
}

/// A tar.gz with `entries` written byte for byte: no sanitising by the tar
/// crate's own path setters, which refuse some of what an attacker sends.
fn hostile_tar(entries: &[Entry]) -> Vec<u8> {
    let mut tar = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_old();
        let name = e.path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        let (typ, link, body): (tar::EntryType, &str, &[u8]) = match &e.kind {
            Kind::File => (tar::EntryType::Regular, "", b"owned\n"),
            Kind::Dir => (tar::EntryType::Directory, "", b""),
            Kind::Symlink(t) => (tar::EntryType::Symlink, t, b""),
            Kind::HardLink(t) => (tar::EntryType::Link, t, b""),
            Kind::Fifo => (tar::EntryType::Fifo, "", b""),
            Kind::CharDevice => (tar::EntryType::Char, "", b""),
        };
        header.set_entry_type(typ);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_size(body.len() as u64);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(body);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// Every path under `root`, with its metadata's type and size, to compare
/// before and after.
fn snapshot(root: &Path) -> BTreeSet<(PathBuf, String, u64)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = format!("{:?}", meta.file_type());
            out.insert((path.clone(), kind, meta.len()));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Resolves `link`'s target lexically against its directory; `None` if it
/// climbs above `root`.
fn lexical_target(root: &Path, link: &Path) -> Option<PathBuf> {
    let target = fs::read_link(link).unwrap();
    if target.is_absolute() {
        return None;
    }
    let mut parts: Vec<_> = link
        .parent()
        .unwrap()
        .strip_prefix(root)
        .unwrap()
        .components()
        .collect();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(_) => parts.push(c),
            _ => {}
        }
    }
    Some(parts.iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever an upload holds, unpacking writes nothing outside its
    /// destination, leaves nothing behind when it fails, and what it keeps
    /// is plain files, directories and symlinks that stay inside.
    #[test]
    fn unpack_never_escapes(entries in proptest::collection::vec(entry(), 1..8)) {
        let sandbox = tempfile::tempdir().unwrap();
        let root = sandbox.path();
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::write(root.join("outside/canary.txt"), "canary").unwrap();
        fs::create_dir_all(root.join("work")).unwrap();
        let dest = root.join("work/dest");
        let outside_before = snapshot(&root.join("outside"));

        let result = archive::unpack(&hostile_tar(&entries)[..], &dest, 1 << 20);

        prop_assert_eq!(snapshot(&root.join("outside")), outside_before);
        prop_assert_eq!(fs::read_to_string(root.join("outside/canary.txt")).unwrap(), "canary");
        let work: Vec<_> = fs::read_dir(root.join("work")).unwrap().flatten().map(|e| e.file_name()).collect();
        match result {
            Err(_) => prop_assert!(work.is_empty(), "left behind: {work:?}"),
            Ok(_) => {
                prop_assert_eq!(work.len(), 1);
                let real_dest = dest.canonicalize().unwrap();
                for (path, _, _) in snapshot(&dest) {
                    let meta = fs::symlink_metadata(&path).unwrap();
                    let ft = meta.file_type();
                    prop_assert!(ft.is_file() || ft.is_dir() || ft.is_symlink(), "{path:?} is {ft:?}");
                    if ft.is_symlink() {
                        prop_assert!(lexical_target(&dest, &path).is_some(),
                            "{path:?} -> {:?} leaves the upload", fs::read_link(&path));
                    } else if let Ok(real) = path.canonicalize() {
                        prop_assert!(real.starts_with(&real_dest), "{path:?} is really {real:?}");
                    }
                }
            }
        }
    }
}
