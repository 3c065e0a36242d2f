//! A wpaas cluster: several `wpaas server` nodes sharing one etcd.
//!
//! * [`placement`] — which node runs each replica: a pure function of the
//!   live nodes, the apps' formations and where replicas run now.

pub mod placement;
