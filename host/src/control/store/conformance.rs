//! The conformance suite: what every [`Store`] backend must do, written
//! against `&dyn Store` only. A backend runs each case with a function that
//! opens it on a home (see the tests of `sled`); opening the same home again
//! after dropping the first handle must give the same records, as a new
//! process would see them.

use std::collections::BTreeSet;
use std::fs;
use std::sync::Arc;

use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::home::Home;

/// One `#[test]` per case of the suite, each opening the backend with
/// `$open` (a `fn(&Home) -> Arc<dyn Store>`). Use it in a backend's test
/// module.
macro_rules! conformance_tests {
    ($open:expr) => {
        #[test]
        fn apps_crud_and_duplicates() {
            $crate::control::store::conformance::apps_crud_and_duplicates(&$open);
        }

        #[test]
        fn update_app_keeps_store_owned_fields() {
            $crate::control::store::conformance::update_app_keeps_store_owned_fields(&$open);
        }

        #[test]
        fn concurrent_updates_are_not_lost() {
            $crate::control::store::conformance::concurrent_updates_are_not_lost(&$open);
        }

        #[test]
        fn releases_number_and_finish() {
            $crate::control::store::conformance::releases_number_and_finish(&$open);
        }

        #[test]
        fn release_versions_are_distinct_under_racing_writers() {
            $crate::control::store::conformance::release_versions_are_distinct_under_racing_writers(
                &$open,
            );
        }

        #[test]
        fn config_keys_are_checked_before_allocating() {
            $crate::control::store::conformance::config_keys_are_checked_before_allocating(&$open);
        }

        #[test]
        fn domains_are_unique_and_lowercased() {
            $crate::control::store::conformance::domains_are_unique_and_lowercased(&$open);
        }

        #[test]
        fn racing_domain_claims_have_one_winner() {
            $crate::control::store::conformance::racing_domain_claims_have_one_winner(&$open);
        }

        #[test]
        fn reserved_domains_are_refused() {
            $crate::control::store::conformance::reserved_domains_are_refused(&$open);
        }

        #[test]
        fn builds_lifecycle() {
            $crate::control::store::conformance::builds_lifecycle(&$open);
        }

        #[test]
        fn build_ids_are_distinct_under_racing_writers() {
            $crate::control::store::conformance::build_ids_are_distinct_under_racing_writers(
                &$open,
            );
        }

        #[test]
        fn a_commit_built_before_is_found_with_its_buildpack() {
            $crate::control::store::conformance::a_commit_built_before_is_found_with_its_buildpack(
                &$open,
            );
        }

        #[test]
        fn destroy_removes_everything_but_slugs() {
            $crate::control::store::conformance::destroy_removes_everything_but_slugs(&$open);
        }

        #[test]
        fn unused_slugs_are_removed() {
            $crate::control::store::conformance::unused_slugs_are_removed(&$open);
        }

        #[test]
        fn watch_sees_every_committed_change() {
            $crate::control::store::conformance::watch_sees_every_committed_change(&$open);
        }

        #[test]
        fn live_leases_are_not_recovered() {
            $crate::control::store::conformance::live_leases_are_not_recovered(&$open);
        }

        #[test]
        fn state_survives_reopen_and_interrupted_work_fails() {
            $crate::control::store::conformance::state_survives_reopen_and_interrupted_work_fails(
                &$open,
            );
        }
    };
}
pub(crate) use conformance_tests;

/// Opens a backend on a home.
pub type Open<'a> = &'a dyn Fn(&Home) -> Arc<dyn Store>;

fn fresh(open: Open) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&Home::new(dir.path()));
    (dir, store)
}

fn deploy(s: &dyn Store, app: &str, slug: &str) -> Release {
    s.next_release(app, |base| ReleaseDraft {
        slug: Some(slug.to_string()),
        process_types: vec![("web".into(), "app.wasm".into())],
        ..ReleaseDraft::inherit(base, "Deploy")
    })
    .unwrap()
}

pub fn apps_crud_and_duplicates(open: Open) {
    let (_d, s) = fresh(open);
    let err = s.create_app("Bad").unwrap_err();
    assert!(err.to_string().contains("lowercase"), "{err}");
    assert!(s.apps().unwrap().is_empty());

    let a = s.create_app("zeta").unwrap();
    assert_eq!(a.healthcheck, Healthcheck::default());
    assert_eq!(a.healthcheck.path, "/");
    assert_eq!(a.healthcheck.timeout_ms, 10_000);
    assert!(a.created_at.ends_with('Z'), "{}", a.created_at);
    s.create_app("alpha").unwrap();
    assert!(matches!(s.create_app("zeta"), Err(StoreError::AppExists(n)) if n == "zeta"));
    let names: Vec<_> = s.apps().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(s.app("zeta").unwrap(), a);
    assert!(matches!(s.app("nope"), Err(StoreError::NoSuchApp(_))));
    assert!(matches!(s.releases("nope"), Err(StoreError::NoSuchApp(_))));
    assert!(matches!(s.config("nope"), Err(StoreError::NoSuchApp(_))));
    assert!(matches!(s.builds("nope"), Err(StoreError::NoSuchApp(_))));

    // Racing creators of one name: exactly one wins.
    let won: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| s.create_app("race").is_ok()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap() as usize).sum()
    });
    assert_eq!(won, 1);
}

pub fn update_app_keeps_store_owned_fields(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    let a = s
        .update_app("app", |a| {
            a.formation.insert("web".into(), 4);
            a.buildpack = Some("/bp".into());
            a.healthcheck.path = "/health".into();
            a.name = "other".into();
            a.current = Some(9);
            a.domains.push("evil.example.com".into());
        })
        .unwrap();
    assert_eq!(a.name, "app");
    assert_eq!(a.current, None);
    assert!(a.domains.is_empty());
    assert_eq!(a.formation["web"], 4);
    assert_eq!(s.app("app").unwrap(), a);
    assert!(matches!(
        s.update_app("nope", |_| {}),
        Err(StoreError::NoSuchApp(_))
    ));
}

pub fn concurrent_updates_are_not_lost(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    const THREADS: u32 = 8;
    const PER: u32 = 20;
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let s = &*s;
            sc.spawn(move || {
                for i in 0..PER {
                    s.update_app("app", |a| {
                        a.formation.insert(format!("t{t}-{i}"), i);
                        *a.formation.entry("count".into()).or_default() += 1;
                    })
                    .unwrap();
                }
            });
        }
    });
    let a = s.app("app").unwrap();
    assert_eq!(a.formation["count"], THREADS * PER, "an update was lost");
    assert_eq!(a.formation.len() as u32, THREADS * PER + 1);
}

pub fn releases_number_and_finish(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    assert!(s.current_release("app").unwrap().is_none());
    assert!(s.config("app").unwrap().is_empty());

    let r1 = deploy(&*s, "app", "slug1");
    assert_eq!(r1.version, 1);
    assert_eq!(r1.status, ReleaseStatus::Pending);
    assert_eq!(s.app("app").unwrap().current, None);
    let r1 = s.finish_release("app", 1, Ok(())).unwrap();
    assert_eq!(r1.status, ReleaseStatus::Succeeded);
    assert_eq!(s.app("app").unwrap().current, Some(1));

    // Config change based on the current release.
    let r2 = s
        .next_release("app", |base| {
            let mut d = ReleaseDraft::inherit(base, "Set FOO config vars");
            d.config.insert("FOO".into(), "bar".into());
            d
        })
        .unwrap();
    assert_eq!(r2.version, 2);
    assert_eq!(r2.slug.as_deref(), Some("slug1"));
    assert_eq!(r2.command("web"), Some("app.wasm"));
    s.finish_release("app", 2, Ok(())).unwrap();
    assert_eq!(s.config("app").unwrap()["FOO"], "bar");

    // A failed release leaves current alone and still uses up its number.
    let r3 = deploy(&*s, "app", "broken");
    let r3 = s
        .finish_release("app", r3.version, Err("health check failed: 500".into()))
        .unwrap();
    assert_eq!(
        r3.status,
        ReleaseStatus::Failed {
            reason: "health check failed: 500".into()
        }
    );
    assert_eq!(s.app("app").unwrap().current, Some(2));
    assert_eq!(s.current_release("app").unwrap().unwrap().version, 2);

    // N is the highest version, not current; the draft's base is current.
    let r4 = s
        .next_release("app", |base| {
            assert_eq!(base.unwrap().version, 2);
            ReleaseDraft::inherit(base, "Rollback to v1")
        })
        .unwrap();
    assert_eq!(r4.version, 4);

    // Finishing twice, or unknown versions, are errors.
    assert!(matches!(
        s.finish_release("app", 2, Ok(())),
        Err(StoreError::ReleaseFinished { version: 2, .. })
    ));
    assert!(matches!(
        s.finish_release("app", 99, Ok(())),
        Err(StoreError::NoSuchRelease { version: 99, .. })
    ));
    assert!(matches!(
        s.release("app", 99),
        Err(StoreError::NoSuchRelease { version: 99, .. })
    ));
    assert!(matches!(
        s.release("nope", 1),
        Err(StoreError::NoSuchApp(_))
    ));

    let versions: Vec<_> = s
        .releases("app")
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    assert_eq!(s.release("app", 1).unwrap().description, "Deploy");
}

pub fn release_versions_are_distinct_under_racing_writers(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    s.create_app("other").unwrap();
    const THREADS: usize = 8;
    const PER: usize = 25;
    let got: Vec<u32> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let s = &*s;
                sc.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..PER {
                        let r = s
                            .next_release("app", |base| {
                                ReleaseDraft::inherit(base, format!("t{t} i{i}"))
                            })
                            .unwrap();
                        if i % 3 == 0 {
                            s.finish_release("app", r.version, Ok(())).unwrap();
                        }
                        // Interleave another app to exercise key prefixes.
                        deploy(s, "other", "o");
                        mine.push(r.version);
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let n = (THREADS * PER) as u32;
    assert_eq!(got.len(), n as usize);
    let set: BTreeSet<u32> = got.into_iter().collect();
    assert_eq!(set, (1..=n).collect::<BTreeSet<_>>(), "duplicates or gaps");
    let listed: Vec<u32> = s
        .releases("app")
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(listed, (1..=n).rev().collect::<Vec<_>>());
    assert_eq!(s.releases("other").unwrap().len(), n as usize);
}

pub fn config_keys_are_checked_before_allocating(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    let err = s
        .next_release("app", |_| ReleaseDraft {
            config: [("BAD-KEY".to_string(), "v".to_string())].into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidConfigKey(k) if k == "BAD-KEY"));
    // Nothing was allocated.
    assert!(s.releases("app").unwrap().is_empty());
    assert_eq!(deploy(&*s, "app", "x").version, 1);
}

pub fn domains_are_unique_and_lowercased(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("one").unwrap();
    s.create_app("two").unwrap();
    let a = s.add_domain("one", "WWW.Example.com.").unwrap();
    assert_eq!(a.domains, ["www.example.com"]);
    // Idempotent for the owner.
    s.add_domain("one", "www.example.com").unwrap();
    assert_eq!(s.app("one").unwrap().domains.len(), 1);
    match s.add_domain("two", "www.EXAMPLE.com") {
        Err(StoreError::DomainTaken { domain, app }) => {
            assert_eq!(domain, "www.example.com");
            assert_eq!(app, "one");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.app("two").unwrap().domains.is_empty());
    assert_eq!(
        s.domain_owner("www.example.COM").unwrap().as_deref(),
        Some("one")
    );
    assert!(matches!(
        s.add_domain("one", "bad domain"),
        Err(StoreError::InvalidDomain(_))
    ));
    assert!(matches!(
        s.add_domain("one", "-x.com"),
        Err(StoreError::InvalidDomain(_))
    ));
    assert!(matches!(
        s.add_domain("nope", "x.com"),
        Err(StoreError::NoSuchApp(_))
    ));
    assert!(matches!(
        s.remove_domain("two", "www.example.com"),
        Err(StoreError::NoSuchDomain)
    ));
    s.remove_domain("one", "www.example.com").unwrap();
    assert_eq!(s.domain_owner("www.example.com").unwrap(), None);
    s.add_domain("two", "www.example.com").unwrap();
    assert_eq!(
        s.domain_owner("www.example.com").unwrap().as_deref(),
        Some("two")
    );
}

pub fn racing_domain_claims_have_one_winner(open: Open) {
    let (_d, s) = fresh(open);
    let apps: Vec<String> = (0..8).map(|i| format!("app{i}")).collect();
    for app in &apps {
        s.create_app(app).unwrap();
    }
    let winners: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = apps
            .iter()
            .map(|app| {
                let s = &*s;
                sc.spawn(move || match s.add_domain(app, "shop.example.com") {
                    Ok(_) => Some(app.clone()),
                    Err(StoreError::DomainTaken { .. }) => None,
                    Err(e) => panic!("{e}"),
                })
            })
            .collect();
        hs.into_iter().filter_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        s.domain_owner("shop.example.com").unwrap().as_ref(),
        Some(&winners[0])
    );
    let holders: Vec<_> = s
        .apps()
        .unwrap()
        .into_iter()
        .filter(|a| !a.domains.is_empty())
        .map(|a| a.name)
        .collect();
    assert_eq!(holders, winners);
}

pub fn reserved_domains_are_refused(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("attacker").unwrap();
    for name in ["victim.localhost", "localhost", "127.0.0.1", "10.0.0.1."] {
        assert!(
            matches!(
                s.add_domain("attacker", name),
                Err(StoreError::ReservedDomain { .. })
            ),
            "{name}"
        );
    }
    assert!(matches!(
        s.add_domain("attacker", "[::1]"),
        Err(StoreError::InvalidDomain(_))
    ));
    assert!(s.app("attacker").unwrap().domains.is_empty());
    s.add_domain("attacker", "localhost.example.com").unwrap();
}

pub fn builds_lifecycle(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    assert!(matches!(
        s.create_build("nope"),
        Err(StoreError::NoSuchApp(_))
    ));
    let b1 = s.create_build("app").unwrap();
    let b2 = s.create_build("app").unwrap();
    assert_ne!(b1.id, b2.id);
    assert_eq!(b1.status, BuildStatus::Running);
    let f = s
        .finish_build(
            "app",
            &b1.id,
            Ok(BuildOutput {
                slug: Some("d".into()),
                release: Some(1),
            }),
        )
        .unwrap();
    assert_eq!(f.status, BuildStatus::Succeeded);
    assert!(f.finished_at.is_some());
    s.finish_build("app", &b2.id, Err("compile error".into()))
        .unwrap();
    // The first outcome stays.
    let again = s.finish_build("app", &b2.id, Ok(BuildOutput::default()));
    assert!(matches!(again.unwrap().status, BuildStatus::Failed { .. }));
    let ids: Vec<_> = s.builds("app").unwrap().into_iter().map(|b| b.id).collect();
    assert_eq!(ids, [b2.id.clone(), b1.id.clone()]);
    assert_eq!(s.build("app", &b1.id).unwrap().release, Some(1));
    assert!(matches!(
        s.finish_build("app", "b999999", Err("x".into())),
        Err(StoreError::NoSuchBuild(_))
    ));
    assert!(matches!(
        s.build("app", "../x"),
        Err(StoreError::NoSuchBuild(_))
    ));
    assert!(s.build_log_path("../../etc/passwd").is_err());
    assert_eq!(
        s.build_log_path(&b1.id).unwrap(),
        s.home()
            .root()
            .join("builds")
            .join(format!("{}.log", b1.id))
    );
    assert!(s.build_cache_dir("../x").is_err());
}

pub fn build_ids_are_distinct_under_racing_writers(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("one").unwrap();
    s.create_app("two").unwrap();
    let ids: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let s = &*s;
                sc.spawn(move || {
                    let app = if t % 2 == 0 { "one" } else { "two" };
                    (0..10)
                        .map(|_| s.create_build(app).unwrap().id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 80, "a build id was given twice");
    assert_eq!(s.builds("one").unwrap().len(), 40);
    assert_eq!(s.builds("two").unwrap().len(), 40);
}

pub fn a_commit_built_before_is_found_with_its_buildpack(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    let digest = s.put_slug(b"slug").unwrap();
    let source = |commit: &str, buildpack: Option<&str>| BuildSource {
        commit: Some(commit.into()),
        buildpack: buildpack.map(Into::into),
    };
    let done = |b: &Build, slug: &str| {
        s.finish_build(
            "app",
            &b.id,
            Ok(BuildOutput {
                slug: Some(slug.into()),
                release: Some(1),
            }),
        )
        .unwrap()
    };
    let b1 = s.start_build("app", source("c1", None)).unwrap();
    assert_eq!(b1.commit.as_deref(), Some("c1"));
    // Running builds and failed ones are not reused.
    assert_eq!(s.build_of("app", &source("c1", None)).unwrap(), None);
    let failed = s.start_build("app", source("c2", None)).unwrap();
    s.finish_build("app", &failed.id, Err("no".into())).unwrap();
    assert_eq!(s.build_of("app", &source("c2", None)).unwrap(), None);

    let b1 = done(&b1, &digest);
    assert_eq!(s.build_of("app", &source("c1", None)).unwrap(), Some(b1));
    assert_eq!(s.build_of("app", &source("c1", Some("/bp"))).unwrap(), None);
    assert_eq!(s.build_of("app", &BuildSource::default()).unwrap(), None);
    // A slug that is gone cannot be released again.
    let b3 = s.start_build("app", source("c3", None)).unwrap();
    done(&b3, &"0".repeat(64));
    assert_eq!(s.build_of("app", &source("c3", None)).unwrap(), None);
}

pub fn destroy_removes_everything_but_slugs(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    s.create_app("keep").unwrap();
    let digest = s.put_slug(b"slug").unwrap();
    deploy(&*s, "app", &digest);
    s.finish_release("app", 1, Ok(())).unwrap();
    deploy(&*s, "keep", &digest);
    s.add_domain("app", "Example.COM").unwrap();
    let b = s.create_build("app").unwrap();
    let log = s.build_log_path(&b.id).unwrap();
    fs::write(&log, "-----> hi\n").unwrap();
    let cache = s.build_cache_dir("app").unwrap();
    fs::create_dir_all(&cache).unwrap();
    let repo = s.git_dir("app").unwrap();
    fs::create_dir_all(&repo).unwrap();

    s.destroy_app("app").unwrap();
    assert!(matches!(s.app("app"), Err(StoreError::NoSuchApp(_))));
    assert!(matches!(
        s.destroy_app("app"),
        Err(StoreError::NoSuchApp(_))
    ));
    assert_eq!(s.domain_owner("example.com").unwrap(), None);
    assert!(!log.exists());
    assert!(!cache.exists());
    assert!(!repo.exists());
    assert!(s.slug_path(&digest).is_some());
    assert_eq!(s.releases("keep").unwrap().len(), 1);
    assert_eq!(s.apps().unwrap().len(), 1);

    // Re-creating starts from scratch.
    s.create_app("app").unwrap();
    assert!(s.releases("app").unwrap().is_empty());
    assert!(s.builds("app").unwrap().is_empty());
    assert_eq!(deploy(&*s, "app", &digest).version, 1);
    assert_ne!(s.create_build("app").unwrap().id, b.id);
    s.add_domain("app", "example.com").unwrap();
}

pub fn unused_slugs_are_removed(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    let [a, b, c, pinned, orphan] =
        ["a", "b", "c", "pinned", "orphan"].map(|x| s.put_slug(x.as_bytes()).unwrap());
    deploy(&*s, "app", &a);
    s.finish_release("app", 1, Ok(())).unwrap();
    deploy(&*s, "app", &b);
    deploy(&*s, "app", &c);
    // Keep the newest one and the current one (v1).
    let in_use = s.slugs_in_use(1).unwrap();
    assert_eq!(in_use, [a.clone(), c.clone()].into());
    let removed: BTreeSet<String> = s
        .remove_unused_slugs(1, &[pinned.clone()].into())
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(removed, [b.clone(), orphan.clone()].into());
    for kept in [&a, &c, &pinned] {
        assert!(s.slug_path(kept).is_some());
    }
    assert!(s.slug_path(&b).is_none() && s.slug_path(&orphan).is_none());
}

pub fn watch_sees_every_committed_change(open: Open) {
    let (_d, s) = fresh(open);
    let mut rx = s.watch();
    let app = |name: &str| Change::App(name.to_string());
    s.create_app("app").unwrap();
    assert_eq!(rx.try_recv().unwrap(), app("app"));
    // A write that fails announces nothing.
    s.create_app("app").unwrap_err();
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    s.update_app("app", |a| a.buildpack = Some("/bp".into()))
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), app("app"));
    let r = deploy(&*s, "app", "x");
    let release = Change::Release {
        app: "app".into(),
        version: r.version,
    };
    assert_eq!(rx.try_recv().unwrap(), release);
    s.finish_release("app", r.version, Ok(())).unwrap();
    let mut seen = vec![rx.try_recv().unwrap(), rx.try_recv().unwrap()];
    seen.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(seen, [app("app"), release]);
    let b = s.create_build("app").unwrap();
    let build = Change::Build {
        app: "app".into(),
        id: b.id.clone(),
    };
    assert_eq!(rx.try_recv().unwrap(), build);
    s.finish_build("app", &b.id, Err("no".into())).unwrap();
    assert_eq!(rx.try_recv().unwrap(), build);
    s.add_domain("app", "x.example.com").unwrap();
    assert_eq!(rx.try_recv().unwrap(), app("app"));
    s.destroy_app("app").unwrap();
    assert_eq!(rx.try_recv().unwrap(), Change::AppDestroyed("app".into()));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

pub fn live_leases_are_not_recovered(open: Open) {
    let (_d, s) = fresh(open);
    s.create_app("app").unwrap();
    let b = s.create_build("app").unwrap();
    let r = deploy(&*s, "app", "x");
    // Our own running build and pending release are held by our lease.
    assert_eq!(s.recover_interrupted().unwrap(), 0);
    assert_eq!(s.build("app", &b.id).unwrap().status, BuildStatus::Running);
    assert_eq!(
        s.release("app", r.version).unwrap().status,
        ReleaseStatus::Pending
    );
    s.finish_build("app", &b.id, Ok(BuildOutput::default()))
        .unwrap();
    s.finish_release("app", r.version, Ok(())).unwrap();
    assert_eq!(s.recover_interrupted().unwrap(), 0);
}

pub fn state_survives_reopen_and_interrupted_work_fails(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let digest;
    let (running, finished);
    {
        let s = open(&home);
        s.create_app("web-app").unwrap();
        s.create_app("idle").unwrap();
        digest = s.put_slug(b"slug-bytes").unwrap();
        deploy(&*s, "web-app", &digest);
        s.finish_release("web-app", 1, Ok(())).unwrap();
        s.next_release("web-app", |base| {
            let mut d = ReleaseDraft::inherit(base, "Set FOO config vars");
            d.config.insert("FOO".into(), "1".into());
            d
        })
        .unwrap();
        s.finish_release("web-app", 2, Ok(())).unwrap();
        deploy(&*s, "web-app", "pending-forever");
        s.update_app("web-app", |a| {
            a.formation.insert("web".into(), 3);
        })
        .unwrap();
        s.add_domain("web-app", "app.example.com").unwrap();
        finished = s.create_build("web-app").unwrap();
        s.finish_build("web-app", &finished.id, Ok(BuildOutput::default()))
            .unwrap();
        running = s.create_build("web-app").unwrap();
        // The process dies here: its leases with it.
    }
    let s = open(&home);
    let mut rx = s.watch();
    assert_eq!(s.recover_interrupted().unwrap(), 2);
    assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
    assert_eq!(
        s.recover_interrupted().unwrap(),
        0,
        "recovery is idempotent"
    );
    let apps = s.apps().unwrap();
    assert_eq!(apps.len(), 2);
    let a = s.app("web-app").unwrap();
    assert_eq!(a.current, Some(2));
    assert_eq!(a.formation["web"], 3);
    assert_eq!(a.domains, ["app.example.com"]);
    let cur = s.current_release("web-app").unwrap().unwrap();
    assert_eq!(cur.version, 2);
    assert_eq!(cur.slug.as_deref(), Some(digest.as_str()));
    assert_eq!(cur.config["FOO"], "1");
    assert!(s.slug_path(&digest).is_some());
    assert_eq!(
        s.domain_owner("app.example.com").unwrap().as_deref(),
        Some("web-app")
    );
    assert!(s.current_release("idle").unwrap().is_none());
    assert!(matches!(
        s.release("web-app", 3).unwrap().status,
        ReleaseStatus::Failed { .. }
    ));
    assert!(matches!(
        s.build("web-app", &running.id).unwrap().status,
        BuildStatus::Failed { .. }
    ));
    assert_eq!(
        s.build("web-app", &finished.id).unwrap().status,
        BuildStatus::Succeeded
    );
    // The old holder cannot finish what was recovered.
    assert!(matches!(
        s.finish_release("web-app", 3, Ok(())),
        Err(StoreError::ReleaseFinished { .. })
    ));
    let late = s
        .finish_build("web-app", &running.id, Ok(BuildOutput::default()))
        .unwrap();
    assert!(matches!(late.status, BuildStatus::Failed { .. }));
    // Numbering continues after the reopen.
    assert_eq!(deploy(&*s, "web-app", &digest).version, 4);
    assert_ne!(s.create_build("web-app").unwrap().id, running.id);
}
