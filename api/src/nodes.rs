//! The cluster's nodes: `GET /nodes` (`wpaas nodes`). A server without
//! `--cluster` is a cluster of one and answers with itself.

use serde::{Deserialize, Serialize};

/// A node of the cluster, as it registered itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its name (`wpaas server --node NAME`), unique in the cluster.
    pub name: String,
    /// Its router's address (`host:port`), where other nodes forward
    /// requests for replicas it runs.
    pub router: String,
    /// Its API's address (`host:port`).
    pub api: String,
    /// Replicas it may run.
    pub slots: u32,
    /// Memory it gives its replicas, in bytes.
    pub memory_bytes: u64,
    /// When it joined (RFC 3339).
    pub joined_at: String,
    /// Whether it is the cluster's scheduler now (placement, autoscaling,
    /// health checks run there).
    #[serde(default)]
    pub leader: bool,
}

/// `GET /nodes`: the live nodes, by name, and which one answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nodes {
    /// The node that answered.
    pub this: String,
    /// Whether the server runs in a cluster (`--cluster`).
    pub clustered: bool,
    /// Every live node.
    pub nodes: Vec<Node>,
}
