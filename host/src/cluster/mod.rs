//! A wpaas cluster: several `wpaas server` nodes sharing one etcd.
//!
//! * [`membership`] — the live nodes (each on its etcd lease) and the one
//!   leader among them.
//! * [`token`] — one API token for every node.
//! * [`placement`] — which node runs each replica: a pure function of the
//!   live nodes, the apps' formations and where replicas run now.
//! * [`schedule`] — the placement the leader stores for every node to
//!   follow.

pub mod membership;
pub mod placement;
pub mod schedule;
pub mod token;

use wpaas_api::nodes::Node;

/// What a node offers its replicas: `wpaas server --slots N
/// --node-memory SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Replicas it may run. Default 100.
    pub slots: u32,
    /// Memory for its replicas, in bytes. Default: the machine's.
    pub memory_bytes: u64,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            slots: 100,
            memory_bytes: machine_memory().unwrap_or(4 << 30),
        }
    }
}

/// The machine's memory (`MemTotal` of /proc/meminfo), in bytes.
fn machine_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// This node's record: its name, addresses and capacity, joined now.
pub fn this_node(
    name: &str,
    router: std::net::SocketAddr,
    api: std::net::SocketAddr,
    capacity: Capacity,
) -> Node {
    Node {
        name: name.to_string(),
        router: router.to_string(),
        api: api.to_string(),
        slots: capacity.slots,
        memory_bytes: capacity.memory_bytes,
        joined_at: crate::control::store::now_rfc3339(),
        leader: false,
    }
}
