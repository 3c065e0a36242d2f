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

/// The key, in the `counters` tree, of the highest build id handed out
/// (`b<n>`'s n, big-endian). No app name starts with a NUL byte.
const BUILD_IDS: &[u8] = b"\0build-ids";

impl SledStore {
    /// Makes sure the build id counter exists: a database from before it
    /// (whose ids came from sled's id generator, which jumps ahead by a
    /// million after a crash) continues after the highest id it holds,
    /// in a record or a build log, so no id is ever handed out twice.
    pub(super) fn seed_build_ids(&self) -> Result<(), StoreError> {
        if self.counters.get(BUILD_IDS)?.is_some() {
            return Ok(());
        }
        let mut highest = 0;
        for kv in self.builds.iter() {
            let (_, v) = kv?;
            let build: Build = decode("build", &v)?;
            highest = highest.max(build_number(&build.id));
        }
        for entry in std::fs::read_dir(self.home.build_logs())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".log") {
                highest = highest.max(build_number(id));
            }
        }
        // Only this process has the database open: nothing races this.
        self.counters
            .insert(BUILD_IDS, &highest.to_be_bytes()[..])?;
        Ok(())
    }

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
        // Unique across the store and across restarts, and dense: the
        // counter moves in the transaction that stores the build.
        let started_at = now_rfc3339();
        let lease = self.lease_value();
        let build = (&self.apps, &self.builds, &self.counters, &self.leases).transaction(
            |(apps, builds, counters, leases)| {
                tx_app(apps, app)?;
                let last = counters
                    .get(BUILD_IDS)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map_or(0, u64::from_be_bytes);
                let id = format!("b{}", last + 1);
                counters.insert(BUILD_IDS, &(last + 1).to_be_bytes()[..])?;
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

/// `b12` → 12 (0 for anything else).
fn build_number(id: &str) -> u64 {
    id.strip_prefix('b')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::store::Store;
    use crate::home::Home;

    fn next_build(home: &Home) -> String {
        let store = SledStore::open(home).unwrap();
        let build = store.start_build("app", BuildSource::default()).unwrap();
        store.flush().unwrap();
        build.id
    }

    #[test]
    fn build_ids_continue_densely_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        SledStore::open(&home).unwrap().create_app("app").unwrap();
        assert_eq!(next_build(&home), "b1");
        // Each call opens the store anew, as a restart (or a `kill -9`,
        // whose writes were flushed when they returned) does.
        assert_eq!(next_build(&home), "b2");
        assert_eq!(next_build(&home), "b3");
    }

    #[test]
    fn a_database_from_before_the_counter_continues_after_its_highest_id() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        {
            let store = SledStore::open(&home).unwrap();
            store.create_app("app").unwrap();
            store.start_build("app", BuildSource::default()).unwrap();
            // As an older server left it: ids from sled's generator, no
            // counter, and the log of a build whose app is gone.
            store.counters.remove(BUILD_IDS).unwrap();
            store.flush().unwrap();
        }
        std::fs::write(home.build_log("b2000002"), "").unwrap();
        assert_eq!(next_build(&home), "b2000003");
        assert_eq!(next_build(&home), "b2000004");
    }
}
