//! Apps and the global domain index (`apps`, `domains` trees).

use sled::Transactional;

use super::keys::{
    abort, build_key, decode, encode, lease_key, release_key, tx_app, tx_counters, tx_put,
    Counters, TxResult, BUILD_LEASE, RELEASE_LEASE,
};
use super::SledStore;
use crate::control::store::transitions;
use crate::control::store::{
    claimable_domain, normalize_domain, off_worker, remove_app_files, rename_app_files,
    validate_app_name, App, AppStore, Build, Change, StoreError,
};

impl AppStore for SledStore {
    fn create_app(&self, name: &str) -> Result<App, StoreError> {
        validate_app_name(name)?;
        let app = App::new(name);
        let bytes = encode(&app)?;
        let counters = encode(&Counters::default())?;
        (&self.apps, &self.counters).transaction(|(apps, ctr)| {
            if apps.get(name.as_bytes())?.is_some() {
                return abort(StoreError::AppExists(name.to_string()));
            }
            apps.insert(name.as_bytes(), bytes.as_slice())?;
            ctr.insert(name.as_bytes(), counters.as_slice())?;
            Ok(())
        })?;
        self.committed([Change::App(name.to_string())])?;
        Ok(app)
    }

    fn app(&self, name: &str) -> Result<App, StoreError> {
        match self.apps.get(name.as_bytes())? {
            Some(v) => decode("app", &v),
            None => Err(StoreError::NoSuchApp(name.to_string())),
        }
    }

    fn apps(&self) -> Result<Vec<App>, StoreError> {
        self.apps
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                decode("app", &v)
            })
            .collect()
    }

    fn update_app_with(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut App),
    ) -> Result<App, StoreError> {
        // sled re-runs the closure when the transaction conflicts; the
        // RefCell lets the `Fn` closure sled wants call the `FnMut`.
        let change = std::cell::RefCell::new(change);
        let app = self.apps.transaction(|apps| {
            let before = tx_app(apps, name)?;
            let mut app = before.clone();
            (change.borrow_mut())(&mut app);
            transitions::restore_store_owned(&before, &mut app);
            tx_put(apps, name.as_bytes(), &app)?;
            Ok(app)
        })?;
        self.committed([Change::App(name.to_string())])?;
        Ok(app)
    }

    fn destroy_app(&self, name: &str) -> Result<(), StoreError> {
        let build_ids = self.app_trees().transaction(
            |(apps, releases, builds, domains, counters, leases)| {
                let app = tx_app(apps, name)?;
                let ctr = tx_counters(counters, name)?;
                for v in 1..=ctr.releases {
                    let key = release_key(name, v);
                    releases.remove(key.as_slice())?;
                    leases.remove(lease_key(RELEASE_LEASE, &key))?;
                }
                let mut ids = Vec::new();
                for seq in 1..=ctr.builds {
                    let key = build_key(name, seq);
                    if let Some(b) = builds.remove(key.as_slice())? {
                        if let Ok(b) = decode::<Build>("build", &b) {
                            ids.push(b.id);
                        }
                    }
                    leases.remove(lease_key(BUILD_LEASE, &key))?;
                }
                for d in &app.domains {
                    if domains.get(d.as_bytes())?.as_deref() == Some(name.as_bytes()) {
                        domains.remove(d.as_bytes())?;
                    }
                }
                counters.remove(name.as_bytes())?;
                apps.remove(name.as_bytes())?;
                Ok(ids)
            },
        )?;
        self.committed([Change::AppDestroyed(name.to_string())])?;
        off_worker(|| remove_app_files(&self.home, name, &build_ids));
        Ok(())
    }

    fn rename_app(&self, old: &str, new: &str) -> Result<App, StoreError> {
        validate_app_name(new)?;
        let renamed = self.app_trees().transaction(
            |(apps, releases, builds, domains, counters, leases)| {
                let mut app = tx_app(apps, old)?;
                if apps.get(new.as_bytes())?.is_some() {
                    return abort(StoreError::AppExists(new.to_string()));
                }
                let ctr = tx_counters(counters, old)?;
                // Each record moves to its new key, its lease (a build or
                // release in progress) with it.
                let moved = |tree: &sled::transaction::TransactionalTree,
                             kind: u8,
                             from: Vec<u8>,
                             to: Vec<u8>,
                             what: &str|
                 -> TxResult<()> {
                    let Some(bytes) = tree.remove(from.as_slice())? else {
                        return Ok(());
                    };
                    let mut record: serde_json::Value = match decode(what, &bytes) {
                        Ok(record) => record,
                        Err(e) => return abort(e),
                    };
                    record["app"] = serde_json::Value::from(new);
                    tx_put(tree, &to, &record)?;
                    if let Some(lease) = leases.remove(lease_key(kind, &from))? {
                        leases.insert(lease_key(kind, &to), lease)?;
                    }
                    Ok(())
                };
                for v in 1..=ctr.releases {
                    moved(
                        releases,
                        RELEASE_LEASE,
                        release_key(old, v),
                        release_key(new, v),
                        "release",
                    )?;
                }
                for seq in 1..=ctr.builds {
                    moved(
                        builds,
                        BUILD_LEASE,
                        build_key(old, seq),
                        build_key(new, seq),
                        "build",
                    )?;
                }
                for d in &app.domains {
                    domains.insert(d.as_bytes(), new.as_bytes())?;
                }
                counters.remove(old.as_bytes())?;
                tx_put(counters, new.as_bytes(), &ctr)?;
                apps.remove(old.as_bytes())?;
                app.name = new.to_string();
                tx_put(apps, new.as_bytes(), &app)?;
                Ok(app)
            },
        )?;
        self.committed([
            Change::AppDestroyed(old.to_string()),
            Change::App(new.to_string()),
        ])?;
        off_worker(|| rename_app_files(&self.home, old, new));
        Ok(renamed)
    }

    fn add_domain(&self, app: &str, domain: &str) -> Result<App, StoreError> {
        let domain = claimable_domain(domain)?;
        let updated = (&self.apps, &self.domains).transaction(|(apps, domains)| {
            let mut a = tx_app(apps, app)?;
            if let Some(owner) = domains.get(domain.as_bytes())? {
                if owner.as_ref() != app.as_bytes() {
                    return abort(StoreError::DomainTaken {
                        domain: domain.clone(),
                        app: String::from_utf8_lossy(&owner).into_owned(),
                    });
                }
            }
            domains.insert(domain.as_bytes(), app.as_bytes())?;
            if !a.domains.contains(&domain) {
                a.domains.push(domain.clone());
            }
            tx_put(apps, app.as_bytes(), &a)?;
            Ok(a)
        })?;
        self.committed([Change::App(app.to_string())])?;
        Ok(updated)
    }

    fn remove_domain(&self, app: &str, domain: &str) -> Result<App, StoreError> {
        let domain = normalize_domain(domain).map_err(|_| StoreError::NoSuchDomain)?;
        let updated = (&self.apps, &self.domains).transaction(|(apps, domains)| {
            let mut a = tx_app(apps, app)?;
            let Some(pos) = a.domains.iter().position(|d| *d == domain) else {
                return abort(StoreError::NoSuchDomain);
            };
            a.domains.remove(pos);
            if domains.get(domain.as_bytes())?.as_deref() == Some(app.as_bytes()) {
                domains.remove(domain.as_bytes())?;
            }
            tx_put(apps, app.as_bytes(), &a)?;
            Ok(a)
        })?;
        self.committed([Change::App(app.to_string())])?;
        Ok(updated)
    }

    fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError> {
        let Ok(domain) = normalize_domain(domain) else {
            return Ok(None);
        };
        Ok(self
            .domains
            .get(domain.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use crate::control::store::StoreError;
    use crate::control::store::{BuildOutput, BuildSource, ReleaseDraft, SledStore, Store};
    use crate::home::Home;

    #[test]
    fn a_renamed_app_keeps_its_records_under_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&Home::new(dir.path())).unwrap();
        let store: &dyn Store = &store;
        store.create_app("before").unwrap();
        store.create_app("taken").unwrap();
        store.add_domain("before", "www.example.com").unwrap();
        let release = store
            .next_release("before", |base| {
                ReleaseDraft::inherit(base, "Set A config vars")
            })
            .unwrap();
        store
            .finish_release("before", release.version, Ok(()))
            .unwrap();
        let build = store.start_build("before", BuildSource::default()).unwrap();
        store
            .finish_build("before", &build.id, Ok(BuildOutput::default()))
            .unwrap();

        assert!(matches!(
            store.rename_app("before", "taken"),
            Err(StoreError::AppExists(_))
        ));
        assert!(matches!(
            store.rename_app("before", "Bad_Name"),
            Err(StoreError::InvalidAppName(_))
        ));
        let app = store.rename_app("before", "after").unwrap();
        assert_eq!(app.name, "after");
        assert_eq!(app.current, Some(1));
        assert!(matches!(store.app("before"), Err(StoreError::NoSuchApp(_))));
        let releases = store.releases("after").unwrap();
        assert_eq!(releases.len(), 1);
        assert_eq!(releases[0].app, "after");
        assert_eq!(store.current_release("after").unwrap().unwrap().version, 1);
        assert_eq!(store.build("after", &build.id).unwrap().app, "after");
        assert_eq!(
            store.domain_owner("www.example.com").unwrap().as_deref(),
            Some("after")
        );
        // Its counters moved: the next release and build continue.
        let next = store
            .next_release("after", |base| {
                ReleaseDraft::inherit(base, "Set B config vars")
            })
            .unwrap();
        assert_eq!(next.version, 2);
        // The old name is free again, with nothing of the renamed app.
        store.create_app("before").unwrap();
        assert!(store.releases("before").unwrap().is_empty());
    }
}
