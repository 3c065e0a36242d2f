//! The Rust SDK the platform provides, as Heroku provides a language
//! runtime: apps depend on `wpaas-sdk = "0.1"` by version (it is not on
//! crates.io), and every Rust build resolves that name to the copy of
//! `sdk/` embedded in this binary, through cargo's
//! `--config patch.crates-io.wpaas-sdk.path=…`. So `git push` and
//! `wpaas deploy` build the SDK version the server ships, and an app made
//! from `examples/hello` needs nothing outside its own directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The crate's name, as apps depend on it.
pub const NAME: &str = "wpaas-sdk";

/// The SDK's version: the workspace's (a test pins `sdk/Cargo.toml` to it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every file of the SDK crate: its path in the crate and its text.
/// `sdk/Cargo.toml` is standalone (it inherits nothing from the workspace),
/// so the copy builds anywhere.
pub const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../sdk/Cargo.toml")),
    ("src/lib.rs", include_str!("../../sdk/src/lib.rs")),
    ("src/kv.rs", include_str!("../../sdk/src/kv.rs")),
];

/// The directory name of this SDK's copy: its version and a digest of its
/// files, so a server with another SDK never reuses a stale copy (cargo
/// sees another path, hence another package) and one copy is written once.
pub fn dir_name() -> String {
    let mut hash = Sha256::new();
    for (path, text) in FILES {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    format!("{NAME}-{VERSION}-{}", &hex::encode(hash.finalize())[..12])
}

/// Writes the SDK crate under `root` (created if missing) unless it is
/// there already, and returns its directory. The copy is never changed
/// after it is written (it is renamed into place complete), so cargo's
/// fingerprints of it stay fresh and concurrent builds share it.
pub fn materialize(root: &Path) -> io::Result<PathBuf> {
    let dir = root.join(dir_name());
    if dir.join("Cargo.toml").is_file() {
        return Ok(dir);
    }
    fs::create_dir_all(root)?;
    let staging = tempfile::Builder::new()
        .prefix(".wpaas-sdk-")
        .tempdir_in(root)?;
    for (path, text) in FILES {
        let file = staging.path().join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(file, text)?;
    }
    let staged = staging.keep();
    match fs::rename(&staged, &dir) {
        Ok(()) => Ok(dir),
        // Another build put it there first: the same files.
        Err(_) if dir.join("Cargo.toml").is_file() => {
            let _ = fs::remove_dir_all(&staged);
            Ok(dir)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staged);
            Err(e)
        }
    }
}

/// The `--config` argument that makes cargo resolve `wpaas-sdk` from
/// crates.io to the copy at `dir` (as the build sees it).
pub fn patch_arg(dir: &Path) -> String {
    // A TOML basic string: escape what could end it.
    let path = dir
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("patch.crates-io.{NAME}.path=\"{path}\"")
}

/// Whether the app patches `wpaas-sdk` itself — a `[patch]` in its
/// `Cargo.toml` or in a `.cargo/config.toml` of its directory or one above
/// it (up to `stop`, the upload's root; without `stop`, every ancestor and
/// `CARGO_HOME`'s, as a local `cargo build` sees them): its own copy wins,
/// as this repository's examples use `sdk/` through `examples/.cargo`.
pub(crate) fn patched_by_app(dir: &Path, stop: Option<&Path>) -> bool {
    let mut files = vec![dir.join("Cargo.toml")];
    for ancestor in dir.ancestors() {
        files.push(ancestor.join(".cargo/config.toml"));
        files.push(ancestor.join(".cargo/config"));
        if stop.is_some_and(|stop| ancestor == stop) {
            break;
        }
    }
    if stop.is_none() {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        if let Some(home) = home {
            files.push(home.join("config.toml"));
            files.push(home.join("config"));
        }
    }
    files.iter().any(|file| patches_sdk(file))
}

/// Whether the TOML file has `[patch.<source>] wpaas-sdk = …`.
fn patches_sdk(file: &Path) -> bool {
    let Ok(text) = crate::buildpack::read_no_follow(file) else {
        return false;
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return false;
    };
    table
        .get("patch")
        .and_then(toml::Value::as_table)
        .is_some_and(|sources| sources.values().any(|source| source.get(NAME).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_source_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let mut on_disk = vec!["Cargo.toml".to_string()];
        let mut dirs = vec![root.join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let rel = path.strip_prefix(&root).unwrap();
                    on_disk.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<_> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "list every file of sdk/ in FILES");
    }

    #[test]
    fn the_sdk_manifest_is_standalone_and_has_the_workspace_version() {
        let manifest: toml::Table = FILES[0].1.parse().unwrap();
        let package = manifest["package"].as_table().unwrap();
        assert_eq!(package["name"].as_str(), Some(NAME));
        assert_eq!(package["version"].as_str(), Some(VERSION));
        assert!(
            !FILES[0].1.contains("workspace = true") && !FILES[0].1.contains(".workspace"),
            "sdk/Cargo.toml must not inherit from the workspace"
        );
    }

    #[test]
    fn materialize_writes_once_and_reuses() {
        let t = tempfile::tempdir().unwrap();
        let dir = materialize(t.path()).unwrap();
        assert_eq!(dir, t.path().join(dir_name()));
        assert_eq!(
            fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
            FILES[1].1
        );
        let written = fs::metadata(dir.join("src/lib.rs"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(materialize(t.path()).unwrap(), dir);
        let again = fs::metadata(dir.join("src/lib.rs"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(written, again, "an existing copy is not rewritten");
        // Nothing left over from staging.
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn an_apps_own_patch_is_found() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let app = root.join("examples/hello");
        fs::create_dir_all(&app).unwrap();
        fs::write(app.join("Cargo.toml"), "[package]\nname = \"hello\"\n").unwrap();
        assert!(!patched_by_app(&app, Some(root)));
        fs::create_dir_all(root.join("examples/.cargo")).unwrap();
        fs::write(
            root.join("examples/.cargo/config.toml"),
            "[patch.crates-io]\nwpaas-sdk = { path = \"../sdk\" }\n",
        )
        .unwrap();
        assert!(patched_by_app(&app, Some(root)));
        // Above the upload's root does not count.
        assert!(!patched_by_app(&app, Some(&app)));
        fs::write(
            app.join("Cargo.toml"),
            "[package]\nname = \"hello\"\n[patch.crates-io.wpaas-sdk]\npath = \"vendor\"\n",
        )
        .unwrap();
        assert!(patched_by_app(&app, Some(&app)));
    }

    #[test]
    fn the_patch_argument_is_toml() {
        let arg = patch_arg(Path::new("/cache/a \"b\\c"));
        let table: toml::Table = arg.parse().unwrap();
        assert_eq!(
            table["patch"]["crates-io"][NAME]["path"].as_str(),
            Some("/cache/a \"b\\c")
        );
    }
}
