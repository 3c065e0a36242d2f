//! Compiled code on disk: `.cwasm` files keyed by the engine's compatibility
//! hash and the module's sha256, so a second start (or a rollback) loads
//! machine code instead of compiling.
//!
//! Loading a `.cwasm` maps machine code into the server without any check
//! of what it does, so the cache trusts nothing on disk: the directory is
//! made mode 0700 and every file 0600 (only the server's user writes
//! there), and each file ends with an HMAC-SHA256, under a key only this
//! server holds ([`KEY_FILE_EXTENSION`]: `WPAAS_HOME/cache/compiled.key`,
//! 32 random bytes, mode 0600, made at first start), over the file's name
//! and its bytes. A file whose MAC does not verify — changed by anyone, or
//! another valid file copied under this name — is logged, deleted and
//! compiled again from the module; it is never loaded. The verified bytes
//! are the ones loaded (read once into memory), so nothing can change the
//! file between the check and the load.
//!
//! Code loaded in this process is kept too, by the same key, so that apps
//! and releases running the same module share one copy of its machine code
//! and metadata instead of each loading the file again (a thousand apps
//! from one template cost one copy). The most recently loaded
//! [`LOADED_KEPT`] are kept; a process using an older one keeps its own
//! reference, so forgetting it only means the next load reads the file.

use std::collections::VecDeque;
use std::fs::{self, DirBuilder, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// Loaded modules kept for sharing.
pub(crate) const LOADED_KEPT: usize = 32;

/// The MAC key sits beside the cache directory, with this extension
/// (`cache/compiled` → `cache/compiled.key`).
pub(crate) const KEY_FILE_EXTENSION: &str = "key";

/// Marks the MAC trailer at the end of every `.cwasm` file:
/// `compiled code ‖ TRAILER_MAGIC ‖ HMAC-SHA256 (32 bytes)`.
const TRAILER_MAGIC: &[u8; 12] = b"wpaas-mac-v1";
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

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
pub(crate) struct CodeCache {
    dir: PathBuf,
    engine_key: String,
    /// This server's MAC key.
    key: [u8; 32],
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
    /// Recently loaded code by `.cwasm` path, most recent last.
    loaded: Mutex<VecDeque<(PathBuf, Compiled)>>,
}

impl CodeCache {
    /// Opens (creating, mode 0700) the cache directory for `engine`, and
    /// its MAC key beside it (created on first use, mode 0600).
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> Result<Self> {
        let dir = dir.into();
        private_dir(&dir)
            .with_context(|| format!("could not create cache dir {}", dir.display()))?;
        let key_path = dir.with_extension(KEY_FILE_EXTENSION);
        let key = ensure_key(&key_path)
            .with_context(|| format!("could not read or create {}", key_path.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            key,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            loaded: Mutex::default(),
        })
    }

    /// Number of loads served from disk since this cache was opened.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Number of loads that had to compile.
    pub(crate) fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Number of cache files refused because their MAC did not verify
    /// (the tests' view: the server logs each one instead).
    #[cfg(test)]
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The `.cwasm` path for a module with this source.
    pub(crate) fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(wasm));
        self.dir.join(format!("{}-{digest}.cwasm", self.engine_key))
    }

    /// The `.cwasm` path a file would be cached under, if it is WebAssembly
    /// (binary, or text named `*.wat`); `None` for any other file.
    pub(crate) fn path_for_file(&self, path: &Path) -> Option<PathBuf> {
        let is_wat = path.extension().is_some_and(|e| e == "wat");
        if !is_wat {
            // Only the magic of files that are not WebAssembly is read.
            let mut magic = [0u8; 4];
            let mut file = fs::File::open(path).ok()?;
            io::Read::read_exact(&mut file, &mut magic).ok()?;
            if &magic != b"\0asm" {
                return None;
            }
        }
        let bytes = fs::read(path).ok()?;
        let wasm = wat::parse_bytes(&bytes).ok()?;
        Some(self.path_for(&wasm))
    }

    /// Deletes cache entries (and forgets their loaded code): compiled code
    /// nothing uses any more.
    pub fn remove(&self, entries: &[PathBuf]) {
        let mut loaded = self.loaded.lock().expect("loaded-code lock");
        loaded.retain(|(path, _)| !entries.contains(path));
        drop(loaded);
        for entry in entries.iter().filter(|e| e.starts_with(&self.dir)) {
            let _ = fs::remove_file(entry);
        }
    }

    /// Loads `path` (binary or text wasm) as a component or core module,
    /// from the cache when possible.
    pub fn load(&self, engine: &Engine, path: &Path) -> Result<(Compiled, CacheOutcome)> {
        let bytes = fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let wasm = wat::parse_bytes(&bytes)
            .with_context(|| format!("{} is not WebAssembly", path.display()))?;
        let is_component = is_component(&wasm);
        let cached = self.path_for(&wasm);

        if let Some(compiled) = self.loaded(&cached) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((compiled, CacheOutcome::Hit));
        }
        match self.read_verified(&cached) {
            Ok(Some(code)) => match deserialize(engine, &code, is_component) {
                Ok(compiled) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    self.keep(cached, compiled.clone());
                    return Ok((compiled, CacheOutcome::Hit));
                }
                // Ours, but for another wasmtime build or settings.
                Err(err) => tracing::warn!(
                    "ignoring unusable cache entry {}: {err:#}",
                    cached.display()
                ),
            },
            Ok(None) => {}
            Err(Rejected) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "rejected compiled code {}: its MAC does not verify (changed on disk, or not written by this server); deleted it, compiling {} again",
                    cached.display(),
                    path.display()
                );
                let _ = fs::remove_file(&cached);
            }
        }

        let serialized = if is_component {
            engine.precompile_component(&wasm)
        } else {
            engine.precompile_module(&wasm)
        }
        .map_err(anyhow::Error::from)
        .with_context(|| format!("could not compile {}", path.display()))?;
        let mac = self.mac(&cached, &serialized);
        write_atomically(&cached, &[&serialized, TRAILER_MAGIC, &mac])?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        // From the bytes compiled just now, not from the file.
        let compiled = deserialize(engine, &serialized, is_component)?;
        self.keep(cached, compiled.clone());
        Ok((compiled, CacheOutcome::Miss))
    }

    /// The compiled code in `cwasm` if its MAC verifies; `None` if there is
    /// no such file (or it cannot be read).
    fn read_verified(&self, cwasm: &Path) -> Result<Option<Vec<u8>>, Rejected> {
        let Ok(mut bytes) = fs::read(cwasm) else {
            return Ok(None);
        };
        let trailer = TRAILER_MAGIC.len() + MAC_LEN;
        if bytes.len() < trailer {
            return Err(Rejected);
        }
        let code_len = bytes.len() - trailer;
        let (code, rest) = bytes.split_at(code_len);
        let (magic, mac) = rest.split_at(TRAILER_MAGIC.len());
        if magic != TRAILER_MAGIC {
            return Err(Rejected);
        }
        // `verify_slice` compares in constant time.
        self.hmac(cwasm, code)
            .verify_slice(mac)
            .map_err(|_| Rejected)?;
        bytes.truncate(code_len);
        Ok(Some(bytes))
    }

    fn hmac(&self, cwasm: &Path, code: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        // The name binds the code to its module and engine: a valid file
        // copied under another name does not verify.
        let name = cwasm
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        mac.update(b"wpaas compiled code\0");
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name);
        mac.update(code);
        mac
    }

    fn mac(&self, cwasm: &Path, code: &[u8]) -> [u8; MAC_LEN] {
        self.hmac(cwasm, code).finalize().into_bytes().into()
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

/// A cache file whose MAC did not verify.
struct Rejected;

/// Creates `dir` (and missing parents) mode 0700, and tightens an existing
/// one that others could read or write.
fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The MAC key in `path` (64 hex characters), made on first use: written
/// to a private temporary file (mode 0600) and hard-linked into place, so
/// a server and a `wpaas up` starting together agree on one key.
fn ensure_key(path: &Path) -> io::Result<[u8; 32]> {
    let read = |path: &Path| -> io::Result<[u8; 32]> {
        let text = fs::read_to_string(path)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a key; delete it (and the compiled-code cache is rebuilt)",
                    path.display()
                ),
            )
        })?;
        if fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
        Ok(key)
    };
    match read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".key.tmp-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(hex::encode(key).as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Someone else made it first: theirs is the key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e),
    }
}

/// A component's preamble is `\0asm`, version 0x0d, layer 1; a core
/// module's is `\0asm`, version 1, layer 0.
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && &wasm[..4] == b"\0asm" && wasm[6..8] == [1, 0]
}

/// Unique per process *and* per write: two loads of the same code at once
/// (parallel deploys) must not share a temporary file.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Writes `parts` to a private (0600) temporary sibling and renames it into
/// place, so a reader never sees half a file, even if we crash mid-write.
fn write_atomically(path: &Path, parts: &[&[u8]]) -> Result<()> {
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        for part in parts {
            file.write_all(part)?;
        }
        Ok(())
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("could not write {}", tmp.display()));
    }
    fs::rename(&tmp, path).with_context(|| format!("could not write {}", path.display()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, code: &[u8], is_component: bool) -> Result<Compiled> {
    // SAFETY: `code` was produced by `Engine::precompile_*` in this process,
    // or read from a cache file whose HMAC under this server's private key
    // verified (so this server wrote it, under this name, which holds the
    // engine's compatibility hash). wasmtime copies the bytes and still
    // checks the header and engine settings.
    unsafe {
        Ok(if is_component {
            Compiled::Component(Component::deserialize(engine, code).map_err(anyhow::Error::from)?)
        } else {
            Compiled::Module(Module::deserialize(engine, code).map_err(anyhow::Error::from)?)
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
                .map(|_| scope.spawn(|| write_atomically(&path, &[b"compiled ", b"code"])))
                .collect();
            for writer in writers {
                writer.join().unwrap().unwrap();
            }
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"compiled code");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn module_of(compiled: &Compiled) -> &Module {
        module(compiled)
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

    fn wat_file(dir: &Path, name: &str, n: usize) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("(module (func (export \"f{n}\")))")).unwrap();
        path
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_cache_is_private_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache_dir = dir.path().join("cache/compiled");
        let cache = CodeCache::new(&cache_dir, &engine).unwrap();
        let module = wat_file(dir.path(), "a.wat", 0);
        assert_eq!(cache.load(&engine, &module).unwrap().1, CacheOutcome::Miss);
        let entry = cache.path_for_file(&module).unwrap();
        assert_eq!(mode(&cache_dir), 0o700);
        assert_eq!(mode(&entry), 0o600);
        assert_eq!(mode(&cache_dir.with_extension("key")), 0o600);
        // A new process (same key file): loaded from disk.
        let again = CodeCache::new(&cache_dir, &engine).unwrap();
        assert_eq!(again.load(&engine, &module).unwrap().1, CacheOutcome::Hit);
        assert_eq!(again.rejected(), 0);
    }

    #[test]
    fn a_flipped_byte_is_rejected_deleted_and_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache_dir = dir.path().join("compiled");
        let module = wat_file(dir.path(), "a.wat", 0);
        let entry = {
            let cache = CodeCache::new(&cache_dir, &engine).unwrap();
            cache.load(&engine, &module).unwrap();
            cache.path_for_file(&module).unwrap()
        };
        let good = std::fs::read(&entry).unwrap();
        // One byte of the machine code, then one of the MAC itself.
        for at in [good.len() / 3, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&entry, &bad).unwrap();
            let cache = CodeCache::new(&cache_dir, &engine).unwrap();
            let (compiled, outcome) = cache.load(&engine, &module).unwrap();
            assert_eq!(outcome, CacheOutcome::Miss, "byte {at} flipped");
            assert_eq!(cache.rejected(), 1);
            assert!(module_of(&compiled).get_export("f0").is_some());
            // Replaced by a file that verifies again.
            assert_eq!(std::fs::read(&entry).unwrap(), good);
        }
    }

    #[test]
    fn another_valid_entry_under_this_name_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache_dir = dir.path().join("compiled");
        let (a, b) = (
            wat_file(dir.path(), "a.wat", 0),
            wat_file(dir.path(), "b.wat", 1),
        );
        let cache = CodeCache::new(&cache_dir, &engine).unwrap();
        cache.load(&engine, &a).unwrap();
        cache.load(&engine, &b).unwrap();
        let (entry_a, entry_b) = (
            cache.path_for_file(&a).unwrap(),
            cache.path_for_file(&b).unwrap(),
        );
        // b's code and MAC, as a's file: valid bytes, wrong name.
        std::fs::copy(&entry_b, &entry_a).unwrap();
        let cache = CodeCache::new(&cache_dir, &engine).unwrap();
        let (compiled, outcome) = cache.load(&engine, &a).unwrap();
        assert_eq!((outcome, cache.rejected()), (CacheOutcome::Miss, 1));
        assert!(module_of(&compiled).get_export("f0").is_some());
        assert!(module_of(&compiled).get_export("f1").is_none());
    }

    #[test]
    fn another_servers_entries_and_unsigned_ones_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let module = wat_file(dir.path(), "a.wat", 0);
        let ours = dir.path().join("ours/compiled");
        let theirs = dir.path().join("theirs/compiled");
        let cache = CodeCache::new(&ours, &engine).unwrap();
        let other = CodeCache::new(&theirs, &engine).unwrap();
        other.load(&engine, &module).unwrap();
        let entry = other.path_for_file(&module).unwrap();
        let name = entry.file_name().unwrap();
        // Signed with another key.
        std::fs::copy(&entry, ours.join(name)).unwrap();
        assert_eq!(cache.load(&engine, &module).unwrap().1, CacheOutcome::Miss);
        // Plain wasmtime output without a MAC (what a build could write).
        let compiled = engine
            .precompile_module(&wat::parse_file(&module).unwrap())
            .unwrap();
        let cache = CodeCache::new(&ours, &engine).unwrap();
        std::fs::write(ours.join(name), compiled).unwrap();
        assert_eq!(cache.load(&engine, &module).unwrap().1, CacheOutcome::Miss);
        assert_eq!(cache.rejected(), 1);
    }

    #[test]
    fn a_loose_cache_directory_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("compiled");
        std::fs::create_dir(&cache_dir).unwrap();
        std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        CodeCache::new(&cache_dir, &Engine::default()).unwrap();
        assert_eq!(mode(&cache_dir), 0o700);
    }
}
