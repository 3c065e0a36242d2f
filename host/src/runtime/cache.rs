//! Compiled code on disk: `.cwasm` files keyed by the engine's compatibility
//! hash and the module's sha256, so a second start (or a rollback) loads
//! machine code instead of compiling.
//!
//! Code loaded in this process is kept too, by the same key, so that apps
//! and releases running the same module share one copy of its machine code
//! and metadata instead of each mapping the file again (a thousand apps
//! from one template cost one copy). The most recently loaded
//! [`LOADED_KEPT`] are kept; a process using an older one keeps its own
//! reference, so forgetting it only means the next load reads the file.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// Loaded modules kept for sharing.
pub const LOADED_KEPT: usize = 32;

/// What a `.wasm`/`.wat` file turned out to be.
#[derive(Clone)]
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
    /// Recently loaded code by `.cwasm` path, most recent last.
    loaded: Mutex<VecDeque<(PathBuf, Compiled)>>,
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
            loaded: Mutex::default(),
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

        if let Some(compiled) = self.loaded(&cached) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((compiled, CacheOutcome::Hit));
        }
        if cached.exists() {
            match deserialize(engine, &cached, is_component) {
                Ok(compiled) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    self.keep(cached, compiled.clone());
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
        self.keep(cached, compiled.clone());
        Ok((compiled, CacheOutcome::Miss))
    }

    /// The code loaded from `cwasm` before, if still kept (marked as the
    /// most recently used).
    fn loaded(&self, cwasm: &Path) -> Option<Compiled> {
        let mut loaded = self.loaded.lock().expect("loaded-code lock");
        let at = loaded.iter().position(|(path, _)| path == cwasm)?;
        let entry = loaded.remove(at)?;
        let compiled = entry.1.clone();
        loaded.push_back(entry);
        Some(compiled)
    }

    fn keep(&self, cwasm: PathBuf, compiled: Compiled) {
        let mut loaded = self.loaded.lock().expect("loaded-code lock");
        loaded.retain(|(path, _)| *path != cwasm);
        loaded.push_back((cwasm, compiled));
        while loaded.len() > LOADED_KEPT {
            loaded.pop_front();
        }
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

    fn module(compiled: &Compiled) -> &Module {
        match compiled {
            Compiled::Module(m) => m,
            Compiled::Component(_) => panic!("a core module was expected"),
        }
    }

    #[test]
    fn the_same_code_is_loaded_once_and_shared_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CodeCache::new(dir.path().join("cache"), &engine).unwrap();
        let write = |name: &str, n: usize| {
            let path = dir.path().join(name);
            let wat = format!("(module (func (export \"f{n}\")))");
            std::fs::write(&path, wat).unwrap();
            path
        };
        let first = write("a.wat", 0);
        let twin = write("b.wat", 0);
        let (a, outcome) = cache.load(&engine, &first).unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        // Another file with the same code: the same loaded module.
        let (b, outcome) = cache.load(&engine, &twin).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        assert!(Module::same(module(&a), module(&b)));
        // Once more than LOADED_KEPT others were loaded, it is read again
        // from its file: a separate copy.
        for n in 1..=LOADED_KEPT {
            cache.load(&engine, &write("other.wat", n)).unwrap();
        }
        let (c, outcome) = cache.load(&engine, &first).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        assert!(!Module::same(module(&a), module(&c)));
        assert_eq!((cache.hits(), cache.misses()), (2, 1 + LOADED_KEPT as u64));
    }
}
