//! Membership: which nodes are alive, and which one leads.
//!
//! ```text
//! <prefix>nodes/<name>   the node's record (api::nodes::Node, JSON), on its lease
//! <prefix>leader         the leader's name, on its lease
//! ```
//!
//! A node is alive while its record is there: the record is attached to the
//! node's etcd lease, so it goes when the node stops (revoked at once) or
//! dies (expired within the lease TTL). The leader is whoever created the
//! `leader` key — a compare-and-swap on its absence — and stays leader
//! while its lease lives; every node tries again each tick, so a dead
//! leader is replaced within the TTL plus a tick. One leader at a time is
//! etcd's guarantee (the key exists at most once), not ours.
//!
//! Names are unique: joining under the name of a live node with another API
//! address waits for that record to expire (a node restarted after `kill
//! -9` on another address), then fails. A node that comes back on the same
//! address is taken to be the same node and replaces its old record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use wpaas_api::nodes::Node;

use crate::etcd::{Etcd, EtcdError};

/// Why a node cannot join or read the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// etcd did not answer or refused.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// A live node has the name.
    #[error(
        "a node named {name} is already in the cluster (API at {api}); choose another --node name"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The other node's API address.
        api: String,
    },
    /// A record in etcd is not what this version writes.
    #[error("unreadable cluster record {key}: {reason}")]
    Corrupt {
        /// Its key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// This node's place in the cluster. Dropping it stops its upkeep; the
/// records go with the etcd handle's lease.
pub struct Membership {
    etcd: Etcd,
    me: Node,
    leader: Arc<AtomicBool>,
    upkeep: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("node", &self.me.name)
            .field("leader", &self.is_leader())
            .finish()
    }
}

impl Membership {
    /// Registers `me` (see the module docs for names already taken), runs
    /// for leader once, and keeps both up from then on: every `tick`, the
    /// record is put back if it is gone (the lease was granted anew after
    /// an outage) and a node runs for leader if there is none.
    pub fn join(etcd: Etcd, me: Node, tick: Duration) -> Result<Membership, ClusterError> {
        let me = Node {
            leader: false,
            ..me
        };
        register(&etcd, &me)?;
        let leader = Arc::new(AtomicBool::new(false));
        let keys = Keys::of(&etcd, &me.name);
        let first = etcd.block_on({
            let (keys, name, lease) = (keys.clone(), me.name.clone(), etcd.lease());
            move |client| async move { campaign(client, &keys, &name, lease).await }
        })?;
        leader.store(first, Ordering::SeqCst);
        let upkeep = etcd.runtime().spawn(upkeep(
            etcd.clone(),
            keys,
            serde_json::to_vec(&me).expect("a node serializes"),
            me.name.clone(),
            leader.clone(),
            tick,
        ));
        Ok(Membership {
            etcd,
            me,
            leader,
            upkeep,
        })
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.me.name
    }

    /// The etcd connection (on this node's lease).
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// Whether this node leads now (as of the last tick).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// The live nodes by name, the leader marked.
    pub fn nodes(&self) -> Result<Vec<Node>, ClusterError> {
        let keys = Keys::of(&self.etcd, &self.me.name);
        let mut leader = self
            .etcd
            .block_on(|mut c| async move { c.get(keys.leader, None).await })?;
        let leader = leader.take_kvs().pop().map(|kv| kv.value().to_vec());
        let options = etcd_client::GetOptions::new().with_prefix();
        let mut records = self
            .etcd
            .block_on(|mut c| async move { c.get(keys.nodes, Some(options)).await })?;
        let mut nodes = Vec::new();
        for kv in records.take_kvs() {
            let mut node: Node =
                serde_json::from_slice(kv.value()).map_err(|e| ClusterError::Corrupt {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    reason: e.to_string(),
                })?;
            node.leader = leader.as_deref() == Some(node.name.as_bytes());
            nodes.push(node);
        }
        Ok(nodes)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.upkeep.abort();
    }
}

/// The keys membership uses.
#[derive(Clone)]
struct Keys {
    /// `<prefix>nodes/`.
    nodes: Vec<u8>,
    /// `<prefix>nodes/<name>`.
    me: Vec<u8>,
    /// `<prefix>leader`.
    leader: Vec<u8>,
}

impl Keys {
    fn of(etcd: &Etcd, name: &str) -> Keys {
        Keys {
            nodes: etcd.key("nodes/"),
            me: etcd.key(format!("nodes/{name}")),
            leader: etcd.key("leader"),
        }
    }
}

/// Puts `me`'s record on the lease: if absent, or if it is this node's own
/// from before (same API address). A live node of another address is
/// waited out for up to the lease TTL and a second.
fn register(etcd: &Etcd, me: &Node) -> Result<(), ClusterError> {
    let keys = Keys::of(etcd, &me.name);
    let value = serde_json::to_vec(me).expect("a node serializes");
    let deadline = Instant::now() + etcd.lease_ttl() + Duration::from_secs(1);
    loop {
        let put = TxnOp::put(
            keys.me.clone(),
            value.clone(),
            Some(PutOptions::new().with_lease(etcd.lease())),
        );
        let txn = Txn::new()
            .when([Compare::create_revision(
                keys.me.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([put.clone()])
            .or_else([TxnOp::get(keys.me.clone(), None)]);
        let response = etcd.block_on(|mut c| async move { c.txn(txn).await })?;
        if response.succeeded() {
            return Ok(());
        }
        let Some(TxnOpResponse::Get(get)) = response.op_responses().into_iter().next() else {
            continue;
        };
        let Some(kv) = get.kvs().first() else {
            continue; // gone meanwhile: try again
        };
        let other: Node =
            serde_json::from_slice(kv.value()).map_err(|e| ClusterError::Corrupt {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                reason: e.to_string(),
            })?;
        if other.api == me.api {
            // Our own record from before a restart: replace it, unless it
            // changed meanwhile.
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    keys.me.clone(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                )])
                .and_then([put]);
            if etcd
                .block_on(|mut c| async move { c.txn(txn).await })?
                .succeeded()
            {
                return Ok(());
            }
            continue;
        }
        if Instant::now() > deadline {
            return Err(ClusterError::NameTaken {
                name: me.name.clone(),
                api: other.api,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Creates the `leader` key for `name` if there is none; whether `name`
/// leads now.
async fn campaign(
    mut client: Client,
    keys: &Keys,
    name: &str,
    lease: i64,
) -> Result<bool, etcd_client::Error> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            keys.leader.clone(),
            CompareOp::Equal,
            0,
        )])
        .and_then([TxnOp::put(
            keys.leader.clone(),
            name,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(keys.leader.clone(), None)]);
    let response = client.txn(txn).await?;
    if response.succeeded() {
        return Ok(true);
    }
    Ok(response.op_responses().into_iter().any(|op| match op {
        TxnOpResponse::Get(get) => get
            .kvs()
            .first()
            .is_some_and(|kv| kv.value() == name.as_bytes() && kv.lease() == lease),
        _ => false,
    }))
}

/// Every `tick`: the record back if it went (a new lease after an outage),
/// and a campaign. Errors (etcd down) count as not leading: a node that
/// cannot reach etcd must not act for the cluster.
async fn upkeep(
    etcd: Etcd,
    keys: Keys,
    record: Vec<u8>,
    name: String,
    leader: Arc<AtomicBool>,
    tick: Duration,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let lease = etcd.lease();
        let mut client = etcd.client();
        let put_back = Txn::new()
            .when([Compare::create_revision(
                keys.me.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                keys.me.clone(),
                record.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let leads = match client.txn(put_back).await {
            Ok(_) => campaign(client, &keys, &name, lease).await.unwrap_or(false),
            Err(_) => false,
        };
        if leader.swap(leads, Ordering::SeqCst) != leads {
            tracing::info!(node = %name, leader = leads, "cluster leadership changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::testing::{shared, unique_prefix};

    fn node(name: &str, api: &str) -> Node {
        Node {
            name: name.into(),
            router: "127.0.0.1:1".into(),
            api: api.into(),
            slots: 10,
            memory_bytes: 1 << 30,
            joined_at: "2026-12-06T00:00:00Z".into(),
            leader: false,
        }
    }

    fn connect(prefix: &str) -> Etcd {
        Etcd::connect(&shared().endpoints(), prefix, Duration::from_secs(2)).unwrap()
    }

    const TICK: Duration = Duration::from_millis(200);

    fn wait_for(what: &str, mut probe: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !probe() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn nodes_join_one_leads_and_a_leaver_is_replaced() {
        let prefix = unique_prefix("members");
        let a = Membership::join(connect(&prefix), node("n1", "127.0.0.1:11"), TICK).unwrap();
        let b = Membership::join(connect(&prefix), node("n2", "127.0.0.1:12"), TICK).unwrap();
        assert!(a.is_leader(), "the first node leads");
        assert!(!b.is_leader());
        let nodes = b.nodes().unwrap();
        let names: Vec<_> = nodes.iter().map(|n| (n.name.as_str(), n.leader)).collect();
        assert_eq!(names, [("n1", true), ("n2", false)]);
        assert_eq!(nodes[1].api, "127.0.0.1:12");

        // n1 stops: its records go with its lease and n2 takes over.
        drop(a);
        wait_for("n2 to lead", || b.is_leader());
        let names: Vec<_> = b
            .nodes()
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.leader))
            .collect();
        assert_eq!(names, [("n2".to_string(), true)]);
    }

    #[test]
    fn a_live_name_is_refused_and_the_same_node_may_come_back() {
        let prefix = unique_prefix("names");
        let first = Membership::join(connect(&prefix), node("n1", "127.0.0.1:21"), TICK).unwrap();
        let started = Instant::now();
        let err = Membership::join(connect(&prefix), node("n1", "127.0.0.1:22"), TICK).unwrap_err();
        assert!(matches!(err, ClusterError::NameTaken { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:21"), "{err}");
        // It waited for the record to expire first (the TTL is 2 s).
        assert!(started.elapsed() >= Duration::from_secs(2));

        // The same address: a restart of the same node replaces its record
        // (the old handle is still alive here, as after `kill -9` until the
        // lease expires).
        let again = Membership::join(connect(&prefix), node("n1", "127.0.0.1:21"), TICK).unwrap();
        assert_eq!(again.nodes().unwrap().len(), 1);
        drop(first);
        drop(again);
    }

    #[test]
    fn a_record_lost_with_its_lease_is_put_back() {
        let prefix = unique_prefix("putback");
        let etcd = connect(&prefix);
        let m = Membership::join(etcd.clone(), node("n1", "127.0.0.1:31"), TICK).unwrap();
        // As if the lease had expired in an outage: the keys are gone.
        let key = etcd.key("nodes/n1");
        etcd.block_on(move |mut c| async move { c.delete(key, None).await })
            .unwrap();
        wait_for("the record back", || m.nodes().unwrap().len() == 1);
    }
}
