//! A wpaas cluster: several `wpaas server` nodes sharing one etcd.
//!
//! * [`membership`] — the live nodes (each on its etcd lease) and the one
//!   leader among them.
//! * [`placement`] — which node runs each replica: a pure function of the
//!   live nodes, the apps' formations and where replicas run now.

pub mod membership;
pub mod placement;
