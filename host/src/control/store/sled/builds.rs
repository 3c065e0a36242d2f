//! Builds (`builds` tree) and their leases.

use sled::Transactional;

use super::keys::{
    abort, build_key, decode, lease_key, prefix, tx_app, tx_counters, tx_get, tx_put, BUILD_LEASE,
};
use super::SledStore;
use crate::control::store::{
    is_build_id, now_rfc3339, transitions, AppStore, Build, BuildOutput, BuildSource, BuildStore,
    Change, StoreError,
};

impl SledStore {
    /// The build's key and record; `NoSuchBuild` for a malformed or unknown id.
    fn find_build(&self, app: &str, id: &str) -> Result<(sled::IVec, Build), StoreError> {
        self.app(app)?;
        if is_build_id(id) {
            for kv in self.builds.scan_prefix(prefix(app)).rev() {
                let (k, v) = kv?;
                let b: Build = decode("build", &v)?;
                if b.id == id {
                    return Ok((k, b));
                }
            }
        }
        Err(StoreError::NoSuchBuild(id.to_string()))
    }
}

impl BuildStore for SledStore {
    fn start_build(&self, app: &str, source: BuildSource) -> Result<Build, StoreError> {
        // Unique across the store and across restarts (sled persists the
        // generator ahead of what it hands out).
        let id = format!("b{}", self.db.generate_id()?);
        let started_at = now_rfc3339();
        let lease = self.lease_value();
        let build = (&self.apps, &self.builds, &self.counters, &self.leases).transaction(
            |(apps, builds, counters, leases)| {
                tx_app(apps, app)?;
                let mut ctr = tx_counters(counters, app)?;
                ctr.builds += 1;
                let build = transitions::new_build(id.clone(), app, &source, &started_at);
                let key = build_key(app, ctr.builds);
                tx_put(builds, &key, &build)?;
                leases.insert(lease_key(BUILD_LEASE, &key), &lease[..])?;
                tx_put(counters, app.as_bytes(), &ctr)?;
                Ok(build)
            },
        )?;
        self.committed([Change::Build {
            app: app.to_string(),
            id: build.id.clone(),
        }])?;
        Ok(build)
    }

    fn finish_build(
        &self,
        app: &str,
        id: &str,
        outcome: Result<BuildOutput, String>,
    ) -> Result<Build, StoreError> {
        let (key, _) = self.find_build(app, id)?;
        let finished_at = now_rfc3339();
        let (build, changed) = (&self.builds, &self.leases).transaction(|(builds, leases)| {
            let Some(mut b): Option<Build> = tx_get(builds, "build", &key)? else {
                return abort(StoreError::NoSuchBuild(id.to_string()));
            };
            if !transitions::finish_build(&mut b, &outcome, &finished_at) {
                // Finished already (recovered as interrupted): the first
                // outcome stays.
                return Ok((b, false));
            }
            tx_put(builds, &key, &b)?;
            leases.remove(lease_key(BUILD_LEASE, &key))?;
            Ok((b, true))
        })?;
        if changed {
            self.committed([Change::Build {
                app: app.to_string(),
                id: id.to_string(),
            }])?;
        }
        Ok(build)
    }

    fn build(&self, app: &str, id: &str) -> Result<Build, StoreError> {
        Ok(self.find_build(app, id)?.1)
    }

    fn builds(&self, app: &str) -> Result<Vec<Build>, StoreError> {
        self.app(app)?;
        self.builds
            .scan_prefix(prefix(app))
            .rev()
            .map(|kv| {
                let (_, v) = kv?;
                decode("build", &v)
            })
            .collect()
    }
}
