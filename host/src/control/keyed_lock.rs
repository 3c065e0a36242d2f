//! One async lock per key (an app name): changes to one app run one at a
//! time, changes to different apps run side by side. The platform holds one
//! for app changes, git one for pushes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Held while the key is locked; dropping it unlocks.
pub type KeyGuard = OwnedMutexGuard<()>;

/// A table of async mutexes, one per key, made on first use.
#[derive(Default)]
pub struct KeyedLock {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLock {
    /// Waits until `key` is free, then holds it.
    pub async fn lock(&self, key: &str) -> KeyGuard {
        self.entry(key).lock_owned().await
    }

    /// Holds `key` if it is free now.
    pub fn try_lock(&self, key: &str) -> Option<KeyGuard> {
        self.entry(key).try_lock_owned().ok()
    }

    /// Forgets `key` once nobody holds or waits for it (an app destroyed).
    pub fn forget(&self, key: &str) {
        let mut locks = self.locks.lock().expect("lock table");
        if locks.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(key);
        }
    }

    fn entry(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("lock table")
            .entry(key.to_string())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key() {
        let locks = KeyedLock::default();
        let a = locks.lock("a").await;
        assert!(locks.try_lock("a").is_none());
        let b = locks.try_lock("b").expect("another key is free");
        drop(a);
        assert!(locks.try_lock("a").is_some());
        drop(b);
        locks.forget("b");
        assert!(!locks.locks.lock().unwrap().contains_key("b"));
    }
}
