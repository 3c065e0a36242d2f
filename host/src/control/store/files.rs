//! The files a store keeps beside its records under WPAAS_HOME, the same for
//! every backend: content-addressed slugs (a record names a slug by digest;
//! the bytes are a file), and what [`super::AppStore::destroy_app`] removes
//! with an app (build logs, build cache, git repository).
//!
//! Slug files are written to a temporary name, synced, then renamed into
//! place, and the directory is synced: a `kill -9` leaves a whole slug or
//! none (and maybe a `.tmp-*` file that nothing names).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::validate::is_digest;
use super::StoreError;
use crate::home::Home;

/// The slug files under `home/slugs`.
#[derive(Debug, Clone)]
pub struct SlugFiles {
    home: Home,
}

impl SlugFiles {
    /// The slugs of `home`, creating the directory.
    pub fn open(home: &Home) -> io::Result<Self> {
        fs::create_dir_all(home.slugs())?;
        Ok(Self { home: home.clone() })
    }

    /// Stores `bytes` by content; returns the sha256 hex digest. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let dest = self.home.slug(&digest);
        if dest.exists() {
            return Ok(digest);
        }
        let tmp = self.tmp_path()?;
        let result = (|| -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        self.sync_dir();
        Ok(digest)
    }

    /// Like [`SlugFiles::put`] for a slug in a file (streamed, not read into
    /// memory). `src` is copied, not moved.
    pub fn put_file(&self, src: &Path) -> Result<String, StoreError> {
        let tmp = self.tmp_path()?;
        let result = (|| -> io::Result<String> {
            let mut input = fs::File::open(src)?;
            let mut out = fs::File::create(&tmp)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            out.sync_all()?;
            let digest = hex::encode(hasher.finalize());
            let dest = self.home.slug(&digest);
            if dest.exists() {
                fs::remove_file(&tmp)?;
            } else {
                fs::rename(&tmp, &dest)?;
            }
            Ok(digest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        let digest = result?;
        self.sync_dir();
        Ok(digest)
    }

    /// Stores the slug in file `src` by content, moving it (same file system:
    /// `src` is under the home); returns its digest.
    pub fn adopt(&self, src: &Path) -> Result<String, StoreError> {
        let digest = (|| -> io::Result<String> {
            let mut input = fs::File::open(src)?;
            let mut hasher = Sha256::new();
            io::copy(&mut input, &mut hasher)?;
            input.sync_all()?;
            let digest = hex::encode(hasher.finalize());
            let dest = self.home.slug(&digest);
            if dest.exists() {
                fs::remove_file(src)?;
            } else {
                fs::rename(src, &dest)?;
            }
            Ok(digest)
        })();
        if digest.is_err() {
            let _ = fs::remove_file(src);
        }
        let digest = digest?;
        self.sync_dir();
        Ok(digest)
    }

    /// Path of a stored slug, `None` if the digest is malformed or not stored.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        if !is_digest(digest) {
            return None;
        }
        let p = self.home.slug(digest);
        p.is_file().then_some(p)
    }

    /// Deletes every stored slug (tarball and unpacked files) that is not in
    /// `keep`; returns the digests removed.
    pub fn remove_all_but(&self, keep: &BTreeSet<String>) -> Result<Vec<String>, StoreError> {
        let unpacked = self.home.unpacked_slugs();
        let mut stored = BTreeSet::new();
        for entry in fs::read_dir(self.home.slugs())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(digest) = name.strip_suffix(".tar.gz").filter(|d| is_digest(d)) {
                stored.insert(digest.to_string());
            }
        }
        for entry in fs::read_dir(&unpacked).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_digest(&name) {
                stored.insert(name);
            }
        }
        let mut removed = Vec::new();
        for digest in stored {
            if keep.contains(&digest) {
                continue;
            }
            let _ = fs::remove_file(self.home.slug(&digest));
            let _ = fs::remove_dir_all(self.home.unpacked_slug(&digest));
            removed.push(digest);
        }
        if !removed.is_empty() {
            self.sync_dir();
        }
        Ok(removed)
    }

    fn tmp_path(&self) -> Result<PathBuf, StoreError> {
        let name = format!(".tmp-{}", crate::control::token::random_hex(8)?);
        Ok(self.home.slugs().join(name))
    }

    fn sync_dir(&self) {
        if let Ok(d) = fs::File::open(self.home.slugs()) {
            let _ = d.sync_all();
        }
    }
}

/// Removes the files of a destroyed app: its build logs, release-phase
/// outputs, build cache and git repository (a re-created app starts with an empty repository, so pushing
/// the same commits again deploys them). Best effort: the records are gone
/// already, and these files are not records.
pub fn remove_app_files(home: &Home, app: &str, build_ids: &[String]) {
    for id in build_ids {
        let _ = fs::remove_file(home.build_log(id));
    }
    let _ = fs::remove_dir_all(home.release_outputs(app));
    let _ = fs::remove_dir_all(home.build_cache(app));
    let _ = fs::remove_dir_all(home.git_dir(app));
}

/// Moves the files of a renamed app to its new name: release outputs,
/// build cache and git repository (build logs are named by build id).
/// Best effort, like [`remove_app_files`]: the records moved already.
pub fn rename_app_files(home: &Home, old: &str, new: &str) {
    for (from, to) in [
        (home.release_outputs(old), home.release_outputs(new)),
        (home.build_cache(old), home.build_cache(new)),
        (home.git_dir(old), home.git_dir(new)),
    ] {
        if from.exists() {
            if let Err(err) = fs::rename(&from, &to) {
                tracing::warn!(from = %from.display(), to = %to.display(), "could not move a renamed app's files: {err}");
            }
        }
    }
}

/// A backend whose slugs are [`SlugFiles`] under its home: it gets
/// [`SlugStore`](super::SlugStore) from them (every backend so far; a
/// cluster does not move slugs between nodes yet).
pub(crate) trait HasSlugFiles {
    /// The slug files.
    fn slug_files(&self) -> &SlugFiles;
}

impl<T: HasSlugFiles> super::SlugStore for T {
    fn put_slug(&self, bytes: &[u8]) -> Result<String, StoreError> {
        self.slug_files().put(bytes)
    }

    fn put_slug_file(&self, src: &Path) -> Result<String, StoreError> {
        self.slug_files().put_file(src)
    }

    fn adopt_slug_file(&self, src: &Path) -> Result<String, StoreError> {
        self.slug_files().adopt(src)
    }

    fn slug_path(&self, digest: &str) -> Option<PathBuf> {
        self.slug_files().path(digest)
    }

    fn remove_slugs_except(&self, keep: &BTreeSet<String>) -> Result<Vec<String>, StoreError> {
        self.slug_files().remove_all_but(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let s = SlugFiles::open(&home).unwrap();
        let d1 = s.put(b"hello").unwrap();
        assert_eq!(
            d1,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.put(b"hello").unwrap(), d1);
        let p = s.path(&d1).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert!(p.ends_with(format!("slugs/{d1}.tar.gz")));
        assert!(s.path(&"0".repeat(64)).is_none());
        assert!(s.path("../db").is_none());

        let src = dir.path().join("src.tar.gz");
        fs::write(&src, b"hello").unwrap();
        assert_eq!(s.put_file(&src).unwrap(), d1);
        fs::write(&src, b"other").unwrap();
        let d2 = s.put_file(&src).unwrap();
        assert_eq!(fs::read(s.path(&d2).unwrap()).unwrap(), b"other");
        // No temporaries left.
        let names: Vec<_> = fs::read_dir(home.slugs())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
        assert_eq!(names.len(), 2);

        // Adopting moves the file in.
        fs::write(&src, b"third").unwrap();
        let d3 = s.adopt(&src).unwrap();
        assert!(!src.exists());
        fs::create_dir_all(home.unpacked_slug(&d3)).unwrap();
        let removed = s.remove_all_but(&[d1.clone()].into()).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(s.path(&d1).is_some() && s.path(&d2).is_none() && s.path(&d3).is_none());
        assert!(!home.unpacked_slug(&d3).exists());
    }
}
