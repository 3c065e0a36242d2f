//! The conformance suite against a real etcd (one per test binary, each
//! test under its own prefix), and what only a store shared by several
//! nodes must do: two handles on one prefix are two nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::*;
use crate::control::store::{BuildSource, BuildStatus, Release, ReleaseDraft, ReleaseStatus};
use crate::etcd::testing::{self, shared, unique_prefix};
use crate::etcd::DEFAULT_LEASE_TTL;

/// The store of `home` on the shared etcd, under a prefix made of the
/// home's path, so opening the home again sees the same records.
fn open(home: &Home) -> Arc<dyn Store> {
    let prefix = format!("/test{}/", home.root().display());
    node(home, &shared().endpoints(), &prefix)
}

/// A handle of its own (its own connection and lease) on `prefix`.
fn node(home: &Home, endpoints: &[String], prefix: &str) -> Arc<dyn Store> {
    let etcd = Etcd::connect(endpoints, prefix, DEFAULT_LEASE_TTL).expect("connect to etcd");
    Arc::new(EtcdStore::open(home, etcd).expect("open the etcd store"))
}

crate::control::store::conformance::conformance_tests!(open);

/// Two nodes of one cluster: one prefix, two homes, two leases.
fn two_nodes() -> (tempfile::TempDir, EtcdStore, EtcdStore) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("cluster");
    let open = |name: &str| {
        let home = Home::new(dir.path().join(name));
        let etcd = Etcd::connect(&shared().endpoints(), &prefix, DEFAULT_LEASE_TTL).unwrap();
        EtcdStore::open(&home, etcd).unwrap()
    };
    let (a, b) = (open("a"), open("b"));
    (dir, a, b)
}

fn deploy(s: &dyn Store, app: &str) -> Release {
    s.next_release(app, |base| ReleaseDraft::inherit(base, "Deploy"))
        .unwrap()
}

/// The next change on `rx` that is not `skip`, within a few seconds.
fn next_change(rx: &mut broadcast::Receiver<Change>) -> Change {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rx.try_recv() {
            Ok(change) => return change,
            Err(broadcast::error::TryRecvError::Empty) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("no change announced: {e:?}"),
        }
    }
}

#[test]
fn two_nodes_deploying_one_app_get_distinct_versions() {
    let (_dir, a, b) = two_nodes();
    let (a, b): (&dyn Store, &dyn Store) = (&a, &b);
    a.create_app("app").unwrap();
    let versions: Vec<u32> = std::thread::scope(|scope| {
        let racers: Vec<_> = [a, b, a, b]
            .into_iter()
            .map(|node| {
                scope.spawn(move || {
                    (0..5)
                        .map(|_| deploy(node, "app").version)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        racers.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=20).collect::<Vec<_>>(), "{versions:?}");
    let ids: std::collections::BTreeSet<String> = std::thread::scope(|scope| {
        let racers: Vec<_> = [a, b]
            .into_iter()
            .map(|node| {
                scope.spawn(move || {
                    (0..5)
                        .map(|_| node.start_build("app", BuildSource::default()).unwrap().id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        racers.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(ids.len(), 10, "build ids are distinct across nodes");
}

#[test]
fn a_change_on_one_node_is_announced_on_the_other() {
    let (_dir, a, b) = two_nodes();
    let (a, b): (&dyn Store, &dyn Store) = (&a, &b);
    let mut rx = b.watch();
    a.create_app("app").unwrap();
    assert_eq!(next_change(&mut rx), Change::App("app".into()));
    let r = deploy(a, "app");
    assert_eq!(
        next_change(&mut rx),
        Change::Release {
            app: "app".into(),
            version: r.version
        }
    );
    // What one node wrote, the other reads.
    assert_eq!(b.release("app", r.version).unwrap(), r);
    a.destroy_app("app").unwrap();
    assert_eq!(next_change(&mut rx), Change::AppDestroyed("app".into()));
    assert!(matches!(b.app("app"), Err(StoreError::NoSuchApp(_))));
}

#[test]
fn a_dead_nodes_unfinished_work_is_failed_by_another_node() {
    let (_dir, node_a, b) = two_nodes();
    let (a, b): (&dyn Store, &dyn Store) = (&node_a, &b);
    a.create_app("app").unwrap();
    let r = deploy(a, "app");
    let build = a.create_build("app").unwrap();
    // A live node's work is left alone.
    assert_eq!(b.recover_interrupted().unwrap(), 0);
    // Node a dies: its lease ends (here revoked, as its TTL would).
    let lease = node_a.etcd().lease();
    node_a
        .etcd()
        .block_on(move |mut c| async move { c.lease_revoke(lease).await })
        .unwrap();
    assert_eq!(b.recover_interrupted().unwrap(), 2);
    assert!(matches!(
        b.release("app", r.version).unwrap().status,
        ReleaseStatus::Failed { .. }
    ));
    assert!(matches!(
        b.build("app", &build.id).unwrap().status,
        BuildStatus::Failed { .. }
    ));
    assert!(matches!(
        a.finish_release("app", r.version, Ok(())),
        Err(StoreError::ReleaseFinished { .. })
    ));
}

#[test]
fn a_node_that_dies_without_revoking_frees_its_work_after_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("expiry");
    let short = Etcd::connect(&shared().endpoints(), &prefix, Duration::from_secs(2)).unwrap();
    let etcd_a = short.clone();
    let a: Arc<dyn Store> =
        Arc::new(EtcdStore::open(&Home::new(dir.path().join("a")), short).unwrap());
    let b = node(
        &Home::new(dir.path().join("b")),
        &shared().endpoints(),
        &prefix,
    );
    a.create_app("app").unwrap();
    deploy(&*a, "app");
    // Its keep-alive holds it past the TTL.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(b.recover_interrupted().unwrap(), 0);
    // Killed: no more keep-alives, no revoke. etcd expires the lease.
    etcd_a.crash();
    drop(a);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.recover_interrupted().unwrap(),
        0,
        "the lease lasts its TTL"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.recover_interrupted().unwrap() == 0 {
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_unreachable_etcd_fails_writes_with_a_clear_error_until_it_is_back() {
    let mut server = testing::EtcdServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let s = node(&Home::new(dir.path()), &server.endpoints(), "/wpaas/");
    s.create_app("app").unwrap();
    server.stop();
    let err = s.create_app("other").unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&server.endpoint()), "{err}");
    let platform: crate::control::error::PlatformError = err.into();
    assert_eq!(platform.code(), wpaas_api::ErrorCode::Unavailable);
    server.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = s.create_app("other") {
        assert!(
            Instant::now() < deadline,
            "etcd is back but writes fail: {e}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut rx = s.watch();
    s.update_app("app", |a| a.buildpack = Some("/bp".into()))
        .unwrap();
    assert_eq!(
        rx.try_recv().unwrap(),
        Change::App("app".into()),
        "the watch came back with etcd"
    );
}
