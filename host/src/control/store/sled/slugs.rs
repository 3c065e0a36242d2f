//! Slugs: files by content under `WPAAS_HOME/slugs`
//! ([`SlugFiles`](crate::control::store::SlugFiles)); in sled, only releases
//! and builds name them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::SledStore;
use crate::control::store::{SlugStore, StoreError};

impl SlugStore for SledStore {
    fn put_slug(&self, bytes: &[u8]) -> Result<String, StoreError> {
        self.slugs.put(bytes)
    }

    fn put_slug_file(&self, src: &Path) -> Result<String, StoreError> {
        self.slugs.put_file(src)
    }

    fn adopt_slug_file(&self, src: &Path) -> Result<String, StoreError> {
        self.slugs.adopt(src)
    }

    fn slug_path(&self, digest: &str) -> Option<PathBuf> {
        self.slugs.path(digest)
    }

    fn remove_slugs_except(&self, keep: &BTreeSet<String>) -> Result<Vec<String>, StoreError> {
        self.slugs.remove_all_but(keep)
    }
}
