//! Builds (`builds/`), the store-wide build number and their leases.

use etcd_client::KeyValue;

use super::keys;
use super::txn::decode;
use super::EtcdStore;
use crate::control::store::{
    is_build_id, now_rfc3339, transitions, AppStore, Build, BuildOutput, BuildSource, BuildStore,
    StoreError,
};

impl EtcdStore {
    /// The app's build records, oldest first.
    fn build_kvs(&self, app: &str) -> Result<Vec<KeyValue>, StoreError> {
        self.app(app)?;
        Ok(self
            .etcd
            .get_prefix(keys::full(&self.etcd, &keys::builds(app)))?)
    }

    /// The build's key (below the root) and record; `NoSuchBuild` for a
    /// malformed or unknown id.
    fn find_build(&self, app: &str, id: &str) -> Result<(String, Build), StoreError> {
        let kvs = self.build_kvs(app)?;
        if is_build_id(id) {
            let root = keys::full(&self.etcd, "");
            for kv in kvs.iter().rev() {
                let b: Build = decode("build", kv.value())?;
                if b.id == id {
                    let key = String::from_utf8_lossy(&kv.key()[root.len()..]).into_owned();
                    return Ok((key, b));
                }
            }
        }
        Err(StoreError::NoSuchBuild(id.to_string()))
    }
}

impl BuildStore for EtcdStore {
    fn start_build(&self, app: &str, source: BuildSource) -> Result<Build, StoreError> {
        let started_at = now_rfc3339();
        self.transact(|tx| {
            tx.app(app)?;
            // The store-wide number, by compare-and-swap with the rest.
            let n: u64 = tx.get("build ids", keys::BUILD_IDS)?.unwrap_or(0) + 1;
            let mut ctr = tx.counters(app)?;
            ctr.builds += 1;
            let build = transitions::new_build(format!("b{n}"), app, &source, &started_at);
            let key = keys::build(app, ctr.builds);
            tx.put(&key, &build)?;
            tx.hold(&key);
            tx.put(keys::BUILD_IDS, &n)?;
            tx.put(&keys::counters(app), &ctr)?;
            Ok(build)
        })
    }

    fn finish_build(
        &self,
        app: &str,
        id: &str,
        outcome: Result<BuildOutput, String>,
    ) -> Result<Build, StoreError> {
        let (key, _) = self.find_build(app, id)?;
        let finished_at = now_rfc3339();
        self.transact(|tx| {
            let Some(mut b): Option<Build> = tx.get("build", &key)? else {
                return Err(StoreError::NoSuchBuild(id.to_string()));
            };
            // Finished already (recovered as interrupted): the first
            // outcome stays, and nothing is written.
            if transitions::finish_build(&mut b, &outcome, &finished_at) {
                tx.put(&key, &b)?;
                tx.delete(&keys::lease_of(&key));
            }
            Ok(b)
        })
    }

    fn build(&self, app: &str, id: &str) -> Result<Build, StoreError> {
        Ok(self.find_build(app, id)?.1)
    }

    fn builds(&self, app: &str) -> Result<Vec<Build>, StoreError> {
        self.build_kvs(app)?
            .iter()
            .rev()
            .map(|kv| decode("build", kv.value()))
            .collect()
    }
}
