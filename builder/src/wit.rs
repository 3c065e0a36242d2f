//! The WIT that wpaas serves, shipped inside the binary so guest
//! toolchains (componentize-py, componentize-js) build against exactly the
//! interface versions the server links (`builder/wit/`, copied from the
//! wasmtime-wasi-http, wasmtime-wasi-keyvalue and wasmtime-wasi-config
//! crates the host is built with; the host binds `deps/keyvalue/` itself).

use std::fs;
use std::io;
use std::path::Path;

/// The world an HTTP app targets, as `PACKAGE/WORLD` for `-w`: wasi:http
/// plus the app's data (wasi:keyvalue, wasi:config), which the server links
/// for every process.
pub const APP_WORLD: &str = "wpaas:platform/app";

/// Every WIT file: its path under the WIT directory and its text.
pub const FILES: &[(&str, &str)] = &[
    ("world.wit", include_str!("../wit/world.wit")),
    ("deps/cli.wit", include_str!("../wit/deps/cli.wit")),
    ("deps/clocks.wit", include_str!("../wit/deps/clocks.wit")),
    (
        "deps/filesystem.wit",
        include_str!("../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../wit/deps/io.wit")),
    ("deps/random.wit", include_str!("../wit/deps/random.wit")),
    ("deps/sockets.wit", include_str!("../wit/deps/sockets.wit")),
    (
        "deps/keyvalue/atomic.wit",
        include_str!("../wit/deps/keyvalue/atomic.wit"),
    ),
    (
        "deps/keyvalue/batch.wit",
        include_str!("../wit/deps/keyvalue/batch.wit"),
    ),
    (
        "deps/keyvalue/store.wit",
        include_str!("../wit/deps/keyvalue/store.wit"),
    ),
    (
        "deps/keyvalue/watch.wit",
        include_str!("../wit/deps/keyvalue/watch.wit"),
    ),
    (
        "deps/keyvalue/world.wit",
        include_str!("../wit/deps/keyvalue/world.wit"),
    ),
    (
        "deps/config/store.wit",
        include_str!("../wit/deps/config/store.wit"),
    ),
    (
        "deps/config/world.wit",
        include_str!("../wit/deps/config/world.wit"),
    ),
];

/// Writes the WIT tree into `dir` (created if missing).
pub fn write_to(dir: &Path) -> io::Result<()> {
    for (path, text) in FILES {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(file, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_file_is_listed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "wit") {
                    on_disk.push(
                        path.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<_> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn the_http_world_includes_the_proxy_the_server_links() {
        let world = FILES.iter().find(|(p, _)| *p == "world.wit").unwrap().1;
        let http = FILES.iter().find(|(p, _)| *p == "deps/http.wit").unwrap().1;
        let version = http
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("package wasi:http@");
        let version = version.trim_end_matches(';');
        assert!(world.contains(&format!("include wasi:http/proxy@{version};")));
    }
}
