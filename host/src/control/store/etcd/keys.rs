//! The key layout of the module docs, as functions. Suffixes are relative
//! to [`root`]; [`crate::etcd::Etcd::key`] makes them full keys.

use crate::etcd::Etcd;

/// `<prefix>store/`: every key of the store.
pub(super) fn root(etcd: &Etcd) -> Vec<u8> {
    etcd.key("store/")
}

/// A full key under the store's root.
pub(super) fn full(etcd: &Etcd, suffix: &str) -> Vec<u8> {
    etcd.key(format!("store/{suffix}"))
}

pub(super) fn app(name: &str) -> String {
    format!("apps/{name}")
}

pub(super) fn counters(app: &str) -> String {
    format!("counters/{app}")
}

pub(super) const BUILD_IDS: &str = "build-ids";

pub(super) fn releases(app: &str) -> String {
    format!("releases/{app}/")
}

pub(super) fn release(app: &str, version: u32) -> String {
    format!("releases/{app}/{version:010}")
}

pub(super) fn builds(app: &str) -> String {
    format!("builds/{app}/")
}

pub(super) fn build(app: &str, seq: u64) -> String {
    format!("builds/{app}/{seq:020}")
}

pub(super) fn domain(domain: &str) -> String {
    format!("domains/{domain}")
}

/// The lease key of a record (`releases/...` or `builds/...`).
pub(super) fn lease_of(record: &str) -> String {
    match record.strip_prefix("releases/") {
        Some(rest) => format!("leases/release/{rest}"),
        None => format!(
            "leases/build/{}",
            record.strip_prefix("builds/").unwrap_or(record)
        ),
    }
}

/// The lease keys of an app: `leases/release/<app>/` and `leases/build/<app>/`.
pub(super) fn app_leases(app: &str) -> [String; 2] {
    [
        format!("leases/release/{app}/"),
        format!("leases/build/{app}/"),
    ]
}

/// Per-app sequence numbers, at `counters/<app>`.
pub(super) use crate::control::store::transitions::Counters;
