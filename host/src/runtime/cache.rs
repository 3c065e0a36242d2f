//! Compiled code on disk: `.cwasm` files keyed by the engine's compatibility
//! hash and the module's sha256, so a second start (or a rollback) loads
//! machine code instead of compiling.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// What a `.wasm`/`.wat` file turned out to be.
pub enum Compiled {
    /// A component (the `wasi:http/proxy` world, or a command).
    Component(Component),
    /// A WASI preview-1 core module.
    Module(Module),
}

/// Where compiled code came from, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from an existing `.cwasm`.
    Hit,
    /// Compiled now and written to the cache.
    Miss,
}

/// A directory of `.cwasm` files for one engine configuration.
pub struct CodeCache {
    dir: PathBuf,
    engine_key: String,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CodeCache {
    /// Opens (creating) the cache directory for `engine`.
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create cache dir {}", dir.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Number of loads served from disk since this cache was opened.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Number of loads that had to compile.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The `.cwasm` path for a module with this source.
    pub fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(wasm));
        self.dir.join(format!("{}-{digest}.cwasm", self.engine_key))
    }

    /// Loads `path` (binary or text wasm) as a component or core module,
    /// from the cache when possible.
    pub fn load(&self, engine: &Engine, path: &Path) -> Result<(Compiled, CacheOutcome)> {
        let bytes =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let wasm = wat::parse_bytes(&bytes)
            .with_context(|| format!("{} is not WebAssembly", path.display()))?;
        let is_component = is_component(&wasm);
        let cached = self.path_for(&wasm);

        if cached.exists() {
            match deserialize(engine, &cached, is_component) {
                Ok(compiled) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((compiled, CacheOutcome::Hit));
                }
                Err(err) => tracing::warn!(
                    "ignoring unusable cache entry {}: {err:#}",
                    cached.display()
                ),
            }
        }

        let serialized = if is_component {
            engine.precompile_component(&wasm)
        } else {
            engine.precompile_module(&wasm)
        }
        .map_err(anyhow::Error::from)
        .with_context(|| format!("could not compile {}", path.display()))?;
        write_atomically(&cached, &serialized)?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        let compiled = deserialize(engine, &cached, is_component)?;
        Ok((compiled, CacheOutcome::Miss))
    }
}

/// A component's preamble is `\0asm`, version 0x0d, layer 1; a core
/// module's is `\0asm`, version 1, layer 0.
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && &wasm[..4] == b"\0asm" && wasm[6..8] == [1, 0]
}

/// Writes to a temporary sibling and renames it into place, so a reader never
/// sees half a file, even if we crash mid-write.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // Unique per process *and* per write: two loads of the same code at
    // once (parallel deploys) must not share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("could not write {}", path.display()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path, is_component: bool) -> Result<Compiled> {
    // SAFETY: the file was produced by `Engine::precompile_*` of an engine
    // with the same compatibility hash (it is part of the file name) and
    // written atomically under WPAAS_HOME, which only the host writes.
    // wasmtime still checks the header and engine settings on load.
    unsafe {
        Ok(if is_component {
            Compiled::Component(
                Component::deserialize_file(engine, path).map_err(anyhow::Error::from)?,
            )
        } else {
            Compiled::Module(Module::deserialize_file(engine, path).map_err(anyhow::Error::from)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_writes_of_one_entry_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry.cwasm");
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| write_atomically(&path, b"compiled code")))
                .collect();
            for writer in writers {
                writer.join().unwrap().unwrap();
            }
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"compiled code");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
