//! `nodes`: the cluster's live nodes.

use anyhow::Result;
use wpaas_api::nodes::Nodes as NodeList;

use super::target::ApiArgs;
use crate::output;

/// List the cluster's live nodes: name, addresses, capacity, which one
/// leads (schedules). A server without --cluster is a cluster of one.
#[derive(clap::Args)]
pub struct Nodes {
    #[command(flatten)]
    api: ApiArgs,
}

impl Nodes {
    pub fn run(self) -> Result<()> {
        let api = self.api.client()?;
        output::show(&api, "/nodes", self.api.json, |list: NodeList| {
            if !list.clustered {
                println!("=== {} (single node, no --cluster)", list.this);
            } else {
                println!("=== Cluster nodes ({} live)", list.nodes.len());
            }
            let rows: Vec<[String; 6]> = list
                .nodes
                .iter()
                .map(|n| {
                    let mut role = if n.leader { "leader" } else { "member" }.to_string();
                    if n.name == list.this {
                        role.push_str(" (this)");
                    }
                    [
                        n.name.clone(),
                        role,
                        n.router.clone(),
                        n.api.clone(),
                        n.slots.to_string(),
                        format!("{} MiB", n.memory_bytes >> 20),
                    ]
                })
                .collect();
            output::table(&["NAME", "ROLE", "ROUTER", "API", "SLOTS", "MEMORY"], &rows);
            Ok(())
        })
    }
}
