//! Releases (`releases/`), their version counter and their leases.

use super::keys;
use super::EtcdStore;
use crate::control::store::{
    now_rfc3339, transitions, AppStore, Release, ReleaseDraft, ReleaseStore, StoreError,
};

impl ReleaseStore for EtcdStore {
    fn next_release_with(
        &self,
        app: &str,
        draft: &mut dyn FnMut(Option<&Release>) -> ReleaseDraft,
    ) -> Result<Release, StoreError> {
        let created_at = now_rfc3339();
        self.transact(|tx| {
            let a = tx.app(app)?;
            let base: Option<Release> = match a.current {
                Some(v) => Some(tx.get("release", &keys::release(app, v))?.ok_or_else(|| {
                    StoreError::Corrupt(format!("app {app} points at missing release v{v}"))
                })?),
                None => None,
            };
            let d = draft(base.as_ref());
            let mut ctr = tx.counters(app)?;
            let version = ctr.releases + 1;
            let release = transitions::new_release(app, version, d, &created_at)?;
            let key = keys::release(app, version);
            tx.require_absent(&key);
            tx.put(&key, &release)?;
            tx.hold(&key);
            ctr.releases = version;
            tx.put(&keys::counters(app), &ctr)?;
            Ok(release)
        })
    }

    fn finish_release(
        &self,
        app: &str,
        version: u32,
        outcome: Result<(), String>,
    ) -> Result<Release, StoreError> {
        let key = keys::release(app, version);
        self.transact(|tx| {
            let mut a = tx.app(app)?;
            let Some(mut r): Option<Release> = tx.get("release", &key)? else {
                return Err(StoreError::NoSuchRelease {
                    app: app.to_string(),
                    version,
                });
            };
            transitions::finish_release(&mut a, &mut r, &outcome)?;
            // The release first: watchers see it before the app points at it.
            tx.put(&key, &r)?;
            if outcome.is_ok() {
                tx.put(&keys::app(app), &a)?;
            }
            tx.delete(&keys::lease_of(&key));
            Ok(r)
        })
    }

    fn release(&self, app: &str, version: u32) -> Result<Release, StoreError> {
        let key = keys::full(&self.etcd, &keys::release(app, version));
        match self.etcd.get(key)? {
            Some(kv) => super::txn::decode("release", kv.value()),
            None => transitions::missing_release(self, app, version),
        }
    }

    fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError> {
        self.app(app)?;
        let mut releases: Vec<Release> = self.list("release", &keys::releases(app))?;
        releases.reverse();
        Ok(releases)
    }

    fn current_release(&self, app: &str) -> Result<Option<Release>, StoreError> {
        transitions::current_release(self, app)
    }
}
