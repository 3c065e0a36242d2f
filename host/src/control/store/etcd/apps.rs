//! Apps and the global domain index (`apps/`, `domains/`).

use super::keys::{self, Counters};
use super::txn::decode;
use super::EtcdStore;
use crate::control::store::{
    claimable_domain, normalize_domain, off_worker, remove_app_files, transitions,
    validate_app_name, App, AppStore, Build, StoreError,
};

impl EtcdStore {
    /// The decoded values under `suffix`, in key order.
    pub(super) fn list<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        suffix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.etcd
            .get_prefix(keys::full(&self.etcd, suffix))?
            .iter()
            .map(|kv| decode(what, kv.value()))
            .collect()
    }
}

impl AppStore for EtcdStore {
    fn create_app(&self, name: &str) -> Result<App, StoreError> {
        validate_app_name(name)?;
        let app = App::new(name);
        self.transact(|tx| {
            if tx.get_raw(&keys::app(name))?.is_some() {
                return Err(StoreError::AppExists(name.to_string()));
            }
            tx.put(&keys::app(name), &app)?;
            tx.put(&keys::counters(name), &Counters::default())
        })?;
        Ok(app)
    }

    fn app(&self, name: &str) -> Result<App, StoreError> {
        match self.etcd.get(keys::full(&self.etcd, &keys::app(name)))? {
            Some(kv) => decode("app", kv.value()),
            None => Err(StoreError::NoSuchApp(name.to_string())),
        }
    }

    fn apps(&self) -> Result<Vec<App>, StoreError> {
        self.list("app", "apps/")
    }

    fn update_app_with(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut App),
    ) -> Result<App, StoreError> {
        self.transact(|tx| {
            let before = tx.app(name)?;
            let mut app = before.clone();
            change(&mut app);
            transitions::restore_store_owned(&before, &mut app);
            tx.put(&keys::app(name), &app)?;
            Ok(app)
        })
    }

    fn rename_app(&self, _old: &str, _new: &str) -> Result<App, StoreError> {
        // Moving every record of an app between nodes' views of it needs
        // the nodes to stop it together first; not done yet.
        Err(StoreError::Unavailable(
            "renaming an app is not supported in a cluster yet".to_string(),
        ))
    }

    fn destroy_app(&self, name: &str) -> Result<(), StoreError> {
        let build_ids = self.transact(|tx| {
            let app = tx.app(name)?;
            // Guards against a release or build started meanwhile (both
            // move the counters), so the ids below are all of them.
            tx.counters(name)?;
            let builds: Vec<Build> = self.list("build", &keys::builds(name))?;
            tx.delete_prefix(&keys::releases(name));
            tx.delete_prefix(&keys::builds(name));
            for leases in keys::app_leases(name) {
                tx.delete_prefix(&leases);
            }
            for d in &app.domains {
                if tx.get_raw(&keys::domain(d))?.as_deref() == Some(name.as_bytes()) {
                    tx.delete(&keys::domain(d));
                }
            }
            tx.delete(&keys::counters(name));
            tx.delete(&keys::app(name));
            Ok(builds.into_iter().map(|b| b.id).collect::<Vec<_>>())
        })?;
        off_worker(|| remove_app_files(&self.home, name, &build_ids));
        Ok(())
    }

    fn add_domain(&self, app: &str, domain: &str) -> Result<App, StoreError> {
        let domain = claimable_domain(domain)?;
        self.transact(|tx| {
            let mut a = tx.app(app)?;
            if let Some(owner) = tx.get_raw(&keys::domain(&domain))? {
                if owner != app.as_bytes() {
                    return Err(StoreError::DomainTaken {
                        domain: domain.clone(),
                        app: String::from_utf8_lossy(&owner).into_owned(),
                    });
                }
            }
            tx.put_raw(&keys::domain(&domain), app.as_bytes().to_vec(), None);
            if !a.domains.contains(&domain) {
                a.domains.push(domain.clone());
            }
            tx.put(&keys::app(app), &a)?;
            Ok(a)
        })
    }

    fn remove_domain(&self, app: &str, domain: &str) -> Result<App, StoreError> {
        let domain = normalize_domain(domain).map_err(|_| StoreError::NoSuchDomain)?;
        self.transact(|tx| {
            let mut a = tx.app(app)?;
            let Some(pos) = a.domains.iter().position(|d| *d == domain) else {
                return Err(StoreError::NoSuchDomain);
            };
            a.domains.remove(pos);
            if tx.get_raw(&keys::domain(&domain))?.as_deref() == Some(app.as_bytes()) {
                tx.delete(&keys::domain(&domain));
            }
            tx.put(&keys::app(app), &a)?;
            Ok(a)
        })
    }

    fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError> {
        let Ok(domain) = normalize_domain(domain) else {
            return Ok(None);
        };
        Ok(self
            .etcd
            .get(keys::full(&self.etcd, &keys::domain(&domain)))?
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }
}
