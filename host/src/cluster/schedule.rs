//! The schedule: the placement the leader computes from the apps and the
//! live nodes, kept at `<prefix>placement` for every node to follow.
//!
//! Only the leader writes it, and only while the `leader` key still names
//! it (a compare in the same transaction), so a deposed leader that has
//! not noticed yet cannot overwrite its successor's.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use super::membership::ClusterError;
use super::placement::{Demand, Placement};
use crate::control::platform::{limits_for, replicas};
use crate::control::store::{App, Release};
use crate::etcd::Etcd;

/// One `(app, type)` of the stored placement.
#[derive(Serialize, Deserialize)]
struct Entry {
    app: String,
    kind: String,
    /// The node of replica 1, 2, … in order.
    nodes: Vec<String>,
}

/// The placement as stored (JSON: a list, since its keys are pairs).
pub fn encode(placement: &Placement) -> Vec<u8> {
    let entries: Vec<Entry> = placement
        .iter()
        .map(|((app, kind), nodes)| Entry {
            app: app.clone(),
            kind: kind.clone(),
            nodes: nodes.clone(),
        })
        .collect();
    serde_json::to_vec(&entries).expect("a placement serializes")
}

/// The stored placement back.
pub fn decode(bytes: &[u8]) -> Result<Placement, serde_json::Error> {
    let entries: Vec<Entry> = serde_json::from_slice(bytes)?;
    Ok(entries
        .into_iter()
        .map(|e| ((e.app, e.kind), e.nodes))
        .collect())
}

/// What the apps ask of the cluster: each process type of each deployed
/// app's current release, as many replicas as its formation says (for an
/// autoscaled `web`, the number the leader's autoscaler last set, within
/// its bounds and at least one, so that some node can serve it), each
/// with its memory limit.
pub fn demands(apps: &[(App, Release)]) -> Vec<Demand> {
    let mut out = Vec::new();
    for (app, release) in apps {
        if release.slug.is_none() {
            continue;
        }
        for (kind, _) in &release.process_types {
            if kind == "release" {
                continue;
            }
            let wanted = match (&app.autoscale, kind.as_str()) {
                // The cluster's autoscaler sets the formation's number.
                (Some(spec), "web") => {
                    let floor = spec.min.max(1);
                    replicas(app, kind).clamp(floor, spec.max.max(floor))
                }
                _ => replicas(app, kind),
            };
            if wanted == 0 {
                continue;
            }
            out.push(Demand {
                app: app.name.clone(),
                kind: kind.clone(),
                replicas: wanted,
                memory_bytes: limits_for(app, kind).memory_bytes as u64,
            });
        }
    }
    out
}

/// The stored placement (empty before the first leader wrote one).
pub fn read(etcd: &Etcd) -> Result<Placement, ClusterError> {
    let key = etcd.key("placement");
    match etcd.get(key.clone())? {
        None => Ok(Placement::new()),
        Some(kv) => decode(kv.value()).map_err(|e| ClusterError::Corrupt {
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Stores `placement` if `leader` still leads; whether it was stored.
pub fn publish(etcd: &Etcd, leader: &str, placement: &Placement) -> Result<bool, ClusterError> {
    let txn = Txn::new()
        .when([Compare::value(etcd.key("leader"), CompareOp::Equal, leader)])
        .and_then([TxnOp::put(etcd.key("placement"), encode(placement), None)]);
    Ok(etcd.txn(txn)?.succeeded())
}

/// Puts this node's load report (JSON) on its lease.
pub fn report_load(etcd: &Etcd, node: &str, load: Vec<u8>) -> Result<(), ClusterError> {
    let put = TxnOp::put(
        etcd.key(format!("load/{node}")),
        load,
        Some(etcd_client::PutOptions::new().with_lease(etcd.lease())),
    );
    etcd.txn(Txn::new().and_then([put]))?;
    Ok(())
}

/// Every live node's load report.
pub fn loads(etcd: &Etcd) -> Result<Vec<Vec<u8>>, ClusterError> {
    Ok(etcd
        .get_prefix(etcd.key("load/"))?
        .into_iter()
        .map(|kv| kv.value().to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placement_reads_back_as_written() {
        let mut placement = Placement::new();
        placement.insert(("a".into(), "web".into()), vec!["n1".into(), "n2".into()]);
        placement.insert(("b".into(), "worker".into()), vec!["n3".into()]);
        assert_eq!(decode(&encode(&placement)).unwrap(), placement);
    }
}
