//! Releases (`releases` tree), their version counter and their leases.

use std::cell::RefCell;

use sled::Transactional;

use super::keys::{
    abort, decode, lease_key, prefix, release_key, tx_app, tx_counters, tx_get, tx_put,
    RELEASE_LEASE,
};
use super::SledStore;
use crate::control::store::{
    now_rfc3339, transitions, AppStore, Change, Release, ReleaseDraft, ReleaseStore, StoreError,
};

impl ReleaseStore for SledStore {
    fn next_release_with(
        &self,
        app: &str,
        draft: &mut dyn FnMut(Option<&Release>) -> ReleaseDraft,
    ) -> Result<Release, StoreError> {
        let draft = RefCell::new(draft);
        let created_at = now_rfc3339();
        let lease = self.lease_value();
        let release = (&self.apps, &self.releases, &self.counters, &self.leases).transaction(
            |(apps, releases, counters, leases)| {
                let a = tx_app(apps, app)?;
                let base: Option<Release> = match a.current {
                    Some(v) => match tx_get(releases, "release", &release_key(app, v))? {
                        Some(r) => Some(r),
                        None => {
                            return abort(StoreError::Corrupt(format!(
                                "app {app} points at missing release v{v}"
                            )))
                        }
                    },
                    None => None,
                };
                let d = (draft.borrow_mut())(base.as_ref());
                let mut ctr = tx_counters(counters, app)?;
                let version = ctr.releases + 1;
                let key = release_key(app, version);
                if releases.get(&key)?.is_some() {
                    return abort(StoreError::Corrupt(format!(
                        "release v{version} of {app} exists beyond the counter"
                    )));
                }
                let release = match transitions::new_release(app, version, d, &created_at) {
                    Ok(r) => r,
                    Err(e) => return abort(e),
                };
                tx_put(releases, &key, &release)?;
                leases.insert(lease_key(RELEASE_LEASE, &key), &lease[..])?;
                ctr.releases = version;
                tx_put(counters, app.as_bytes(), &ctr)?;
                Ok(release)
            },
        )?;
        self.committed([Change::Release {
            app: app.to_string(),
            version: release.version,
        }])?;
        Ok(release)
    }

    fn finish_release(
        &self,
        app: &str,
        version: u32,
        outcome: Result<(), String>,
    ) -> Result<Release, StoreError> {
        let key = release_key(app, version);
        let release = (&self.apps, &self.releases, &self.leases).transaction(
            |(apps, releases, leases)| {
                let mut a = tx_app(apps, app)?;
                let Some(mut r): Option<Release> = tx_get(releases, "release", &key)? else {
                    return abort(StoreError::NoSuchRelease {
                        app: app.to_string(),
                        version,
                    });
                };
                if let Err(e) = transitions::finish_release(&mut a, &mut r, &outcome) {
                    return abort(e);
                }
                if outcome.is_ok() {
                    tx_put(apps, app.as_bytes(), &a)?;
                }
                tx_put(releases, &key, &r)?;
                leases.remove(lease_key(RELEASE_LEASE, &key))?;
                Ok(r)
            },
        )?;
        self.committed(transitions::release_finished(app, version, outcome.is_ok()))?;
        Ok(release)
    }

    fn release(&self, app: &str, version: u32) -> Result<Release, StoreError> {
        match self.releases.get(release_key(app, version))? {
            Some(v) => decode("release", &v),
            None => transitions::missing_release(self, app, version),
        }
    }

    fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError> {
        self.app(app)?;
        self.releases
            .scan_prefix(prefix(app))
            .rev()
            .map(|kv| {
                let (_, v) = kv?;
                decode("release", &v)
            })
            .collect()
    }

    fn current_release(&self, app: &str) -> Result<Option<Release>, StoreError> {
        transitions::current_release(self, app)
    }
}
