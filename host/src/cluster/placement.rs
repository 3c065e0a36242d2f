//! Placement: which node runs each replica of each process type. A pure
//! function of the live nodes, what every app asks for and where replicas
//! run now, so the scheduler (one per cluster) can recompute it on every
//! change and any node can check it.
//!
//! What it does, in the order an operator of Nomad or Kubernetes expects:
//!
//! 1. **Stable**: a replica stays where it is while its node is alive, fits
//!    and the type still wants it — a change elsewhere moves nothing.
//! 2. **Spread**: a new replica goes to the node with the fewest replicas of
//!    its type, then the most free slots, then the smallest name (so two
//!    schedulers given the same input agree).
//! 3. **Within capacity**: a replica takes one instance slot and its memory
//!    limit; a node never gets more than it declared. What fits nowhere is
//!    returned as *pending* (Kubernetes' Pending pod), never dropped.
//! 4. **Rebalance on join**: when a type's replicas are uneven across the
//!    nodes that could take them (one node has two more than another), one
//!    moves at a time to the emptier node until they are even, so a node
//!    that joins gets its share.
//!
//! Replicas are numbered from 1 (`web.1`), as the router and `wpaas ps`
//! show them; `Placement` maps each `(app, type)` to the node of each
//! replica, in replica order.

use std::collections::BTreeMap;

/// A live node, as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCapacity {
    /// Its name (unique in the cluster).
    pub name: String,
    /// Instance slots: replicas it may run.
    pub slots: u32,
    /// Memory it gives its replicas, in bytes.
    pub memory_bytes: u64,
}

/// What one process type of one app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// The app.
    pub app: String,
    /// The process type (`web`, `worker`…).
    pub kind: String,
    /// Replicas wanted.
    pub replicas: u32,
    /// Each replica's memory limit, in bytes.
    pub memory_bytes: u64,
}

/// `(app, type)`.
pub type TypeKey = (String, String);

/// Where each replica runs: for each `(app, type)`, the node of replica
/// 1, 2, … in order.
pub type Placement = BTreeMap<TypeKey, Vec<String>>;

/// A placement and what did not fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Where replicas run.
    pub placement: Placement,
    /// Replicas wanted that no node can take now, per `(app, type)`.
    pub pending: BTreeMap<TypeKey, u32>,
}

/// What is left on a node while placing.
struct Room {
    slots: u32,
    memory: u64,
}

impl Room {
    fn fits(&self, memory: u64) -> bool {
        self.slots > 0 && self.memory >= memory
    }

    fn take(&mut self, memory: u64) {
        self.slots -= 1;
        self.memory -= memory;
    }

    fn give_back(&mut self, memory: u64) {
        self.slots += 1;
        self.memory += memory;
    }
}

/// Places every demand on `nodes`, starting from `previous` (see the module
/// docs for the rules). Deterministic: the same input gives the same plan.
pub fn place(nodes: &[NodeCapacity], demands: &[Demand], previous: &Placement) -> Plan {
    let mut rooms: BTreeMap<&str, Room> = nodes
        .iter()
        .map(|node| {
            let room = Room {
                slots: node.slots,
                memory: node.memory_bytes,
            };
            (node.name.as_str(), room)
        })
        .collect();
    let mut demands: Vec<&Demand> = demands.iter().filter(|d| d.replicas > 0).collect();
    demands.sort_by(|a, b| (&a.app, &a.kind).cmp(&(&b.app, &b.kind)));

    // 1. Keep what still runs where it may, over all types before any new
    //    replica is placed (so a new demand never pushes out a running
    //    replica). A replica keeps its number; one whose node is gone or
    //    full leaves a hole.
    let mut slots: BTreeMap<TypeKey, Vec<Option<String>>> = BTreeMap::new();
    for demand in &demands {
        let key = (demand.app.clone(), demand.kind.clone());
        let before = previous.get(&key).map(Vec::as_slice).unwrap_or_default();
        let kept = (0..demand.replicas as usize)
            .map(|i| {
                let node = before.get(i)?;
                let room = rooms.get_mut(node.as_str())?;
                room.fits(demand.memory_bytes).then(|| {
                    room.take(demand.memory_bytes);
                    node.clone()
                })
            })
            .collect();
        slots.insert(key, kept);
    }

    // 2. Fill the holes, spread. What fits nowhere is pending (and the
    //    replicas after it are numbered on).
    let mut plan = Plan::default();
    for demand in &demands {
        let key = (demand.app.clone(), demand.kind.clone());
        let kept = slots.remove(&key).expect("inserted above");
        // Spread counts every replica of the type, kept or new.
        let mut of_type: Vec<String> = kept.iter().flatten().cloned().collect();
        let mut placed: Vec<String> = Vec::new();
        let mut missing = 0;
        for slot in kept {
            match slot {
                Some(node) => placed.push(node),
                None => match best_room(&rooms, &of_type, demand.memory_bytes) {
                    Some(node) => {
                        rooms
                            .get_mut(node)
                            .expect("a room")
                            .take(demand.memory_bytes);
                        placed.push(node.to_string());
                        of_type.push(node.to_string());
                    }
                    None => missing += 1,
                },
            }
        }
        if missing > 0 {
            plan.pending.insert(key.clone(), missing);
        }
        plan.placement.insert(key, placed);
    }

    // 3. Even out each type across the nodes that could take it.
    for demand in &demands {
        let key = (demand.app.clone(), demand.kind.clone());
        let placed = plan.placement.get_mut(&key).expect("inserted above");
        rebalance(&mut rooms, placed, demand.memory_bytes);
    }
    plan.placement.retain(|_, nodes| !nodes.is_empty());
    plan
}

/// How many of `placed` are on `node`.
fn count_on(placed: &[String], node: &str) -> usize {
    placed.iter().filter(|n| n.as_str() == node).count()
}

/// The node a new replica of a type placed on `placed` should go to.
fn best_room<'a>(
    rooms: &BTreeMap<&'a str, Room>,
    placed: &[String],
    memory: u64,
) -> Option<&'a str> {
    rooms
        .iter()
        .filter(|(_, room)| room.fits(memory))
        // Fewest of this type, then most free slots, then the name.
        .min_by_key(|(name, room)| (count_on(placed, name), u32::MAX - room.slots, **name))
        .map(|(name, _)| *name)
}

/// Moves one replica at a time from the node with the most of this type to
/// the one with the fewest that can take it, while they differ by two or
/// more. The replica moved is the highest-numbered on the fuller node, so
/// low numbers (web.1) move least.
fn rebalance(rooms: &mut BTreeMap<&str, Room>, placed: &mut [String], memory: u64) {
    // Bounded: every move lowers the spread, at most one move per replica
    // per node.
    for _ in 0..placed.len() * rooms.len().max(1) {
        let Some((fullest, most)) = rooms
            .keys()
            .map(|name| (*name, count_on(placed, name)))
            .max_by_key(|&(name, count)| (count, std::cmp::Reverse(name)))
        else {
            return;
        };
        let Some((emptiest, fewest)) = rooms
            .iter()
            .filter(|(_, room)| room.fits(memory))
            .map(|(name, _)| (*name, count_on(placed, name)))
            .min_by_key(|&(name, count)| (count, name))
        else {
            return;
        };
        if most < fewest + 2 {
            return;
        }
        let index = placed
            .iter()
            .rposition(|n| n == fullest)
            .expect("the fullest node holds one");
        rooms.get_mut(fullest).expect("a room").give_back(memory);
        rooms.get_mut(emptiest).expect("a room").take(memory);
        placed[index] = emptiest.to_string();
    }
}

/// What `node` runs of `placement`: for each `(app, type)`, the replica
/// numbers (from 1) placed on it.
pub fn replicas_on<'a>(placement: &'a Placement, node: &str) -> BTreeMap<&'a TypeKey, Vec<u32>> {
    placement
        .iter()
        .filter_map(|(key, nodes)| {
            let numbers: Vec<u32> = nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.as_str() == node)
                .map(|(i, _)| i as u32 + 1)
                .collect();
            (!numbers.is_empty()).then_some((key, numbers))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn node(name: &str, slots: u32) -> NodeCapacity {
        NodeCapacity {
            name: name.into(),
            slots,
            memory_bytes: 4096 * MIB,
        }
    }

    fn demand(app: &str, kind: &str, replicas: u32) -> Demand {
        Demand {
            app: app.into(),
            kind: kind.into(),
            replicas,
            memory_bytes: 128 * MIB,
        }
    }

    fn key(app: &str, kind: &str) -> TypeKey {
        (app.into(), kind.into())
    }

    fn on<'a>(plan: &'a Plan, app: &str, kind: &str) -> Vec<&'a str> {
        plan.placement
            .get(&key(app, kind))
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn replicas_spread_across_nodes() {
        let nodes = [node("n1", 10), node("n2", 10), node("n3", 10)];
        let plan = place(&nodes, &[demand("a", "web", 4)], &Placement::new());
        assert_eq!(on(&plan, "a", "web"), ["n1", "n2", "n3", "n1"]);
        assert!(plan.pending.is_empty());
        // Another app's replicas go first where there is most room.
        let plan = place(
            &nodes,
            &[demand("a", "web", 4), demand("b", "web", 1)],
            &plan.placement,
        );
        assert_eq!(on(&plan, "a", "web"), ["n1", "n2", "n3", "n1"]);
        assert_eq!(on(&plan, "b", "web"), ["n2"]);
    }

    #[test]
    fn capacity_is_never_exceeded_and_the_rest_is_pending() {
        let nodes = [node("n1", 1), node("n2", 2)];
        let plan = place(&nodes, &[demand("a", "web", 5)], &Placement::new());
        assert_eq!(on(&plan, "a", "web").len(), 3);
        assert_eq!(plan.pending.get(&key("a", "web")), Some(&2));
        for n in &nodes {
            let used = replicas_on(&plan.placement, &n.name)
                .values()
                .map(Vec::len)
                .sum::<usize>();
            assert!(used as u32 <= n.slots, "{} runs {used}", n.name);
        }
        // Memory counts too: a 3 GiB replica fits once on a 4 GiB node.
        let big = Demand {
            memory_bytes: 3072 * MIB,
            ..demand("m", "web", 3)
        };
        let plan = place(&[node("n1", 10)], &[big], &Placement::new());
        assert_eq!(on(&plan, "m", "web"), ["n1"]);
        assert_eq!(plan.pending.get(&key("m", "web")), Some(&2));
    }

    #[test]
    fn running_replicas_stay_put_when_something_else_changes() {
        let nodes = [node("n1", 10), node("n2", 10), node("n3", 10)];
        let previous: Placement = [(key("a", "web"), vec!["n3".into(), "n2".into()])].into();
        let plan = place(
            &nodes,
            &[demand("a", "web", 2), demand("b", "worker", 2)],
            &previous,
        );
        assert_eq!(on(&plan, "a", "web"), ["n3", "n2"]);
        assert_eq!(on(&plan, "b", "worker"), ["n1", "n2"]);
        // Scaling down keeps the lowest replica numbers where they were.
        let plan = place(&nodes, &[demand("a", "web", 1)], &plan.placement);
        assert_eq!(on(&plan, "a", "web"), ["n3"]);
        // Scaling to zero removes the type.
        let plan = place(&nodes, &[demand("a", "web", 0)], &plan.placement);
        assert!(plan.placement.is_empty());
    }

    #[test]
    fn replicas_of_a_dead_node_move_to_the_living() {
        let nodes = [node("n1", 10), node("n2", 10), node("n3", 10)];
        let plan = place(&nodes, &[demand("a", "web", 3)], &Placement::new());
        assert_eq!(on(&plan, "a", "web"), ["n1", "n2", "n3"]);
        let living = [node("n1", 10), node("n3", 10)];
        let plan = place(&living, &[demand("a", "web", 3)], &plan.placement);
        let placed = on(&plan, "a", "web");
        assert_eq!(placed.len(), 3);
        assert!(!placed.contains(&"n2"), "{placed:?}");
        assert_eq!(placed[0], "n1", "web.1 stayed");
        assert_eq!(placed[2], "n3", "web.3 stayed");
    }

    #[test]
    fn a_node_that_joins_gets_its_share() {
        let one = [node("n1", 10)];
        let plan = place(&one, &[demand("a", "web", 4)], &Placement::new());
        assert_eq!(on(&plan, "a", "web"), ["n1"; 4]);
        let two = [node("n1", 10), node("n2", 10)];
        let plan = place(&two, &[demand("a", "web", 4)], &plan.placement);
        let placed = on(&plan, "a", "web");
        assert_eq!(count_on(&plan.placement[&key("a", "web")], "n2"), 2);
        assert_eq!(&placed[..2], ["n1", "n1"], "web.1 and web.2 stayed");
        // Already even: nothing moves.
        let again = place(&two, &[demand("a", "web", 4)], &plan.placement);
        assert_eq!(again, plan);
    }

    #[test]
    fn any_input_keeps_capacity_counts_and_is_a_fixed_point() {
        use proptest::prelude::*;
        let node = (1u32..6, 1u64..8).prop_map(|(slots, gib)| (slots, gib << 30));
        let demand = (0usize..4, 0usize..3, 0u32..7, 1u64..3);
        let input = (
            proptest::collection::vec(node, 0..5),
            proptest::collection::vec(demand, 0..8),
        );
        proptest!(|((nodes, demands) in input)| {
            let nodes: Vec<NodeCapacity> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (slots, memory_bytes))| NodeCapacity { name: format!("n{i}"), slots, memory_bytes })
                .collect();
            let mut seen = std::collections::BTreeSet::new();
            let demands: Vec<Demand> = demands
                .into_iter()
                .filter(|(app, kind, _, _)| seen.insert((*app, *kind)))
                .map(|(app, kind, replicas, gib)| Demand {
                    app: format!("a{app}"),
                    kind: ["web", "worker", "clock"][kind].into(),
                    replicas,
                    memory_bytes: gib << 30,
                })
                .collect();
            let plan = place(&nodes, &demands, &Placement::new());
            for n in &nodes {
                let mut slots = 0;
                let mut memory = 0;
                for d in &demands {
                    let count = plan.placement.get(&(d.app.clone(), d.kind.clone()))
                        .map_or(0, |p| count_on(p, &n.name)) as u64;
                    slots += count;
                    memory += count * d.memory_bytes;
                }
                prop_assert!(slots <= n.slots as u64 && memory <= n.memory_bytes);
            }
            for d in &demands {
                let key = (d.app.clone(), d.kind.clone());
                let placed = plan.placement.get(&key).map_or(0, Vec::len) as u32;
                let pending = plan.pending.get(&key).copied().unwrap_or(0);
                prop_assert_eq!(placed + pending, d.replicas);
            }
            // Placing again from its own result changes nothing.
            let again = place(&nodes, &demands, &plan.placement);
            prop_assert_eq!(again.placement, plan.placement);
        });
    }

    #[test]
    fn no_nodes_leaves_everything_pending() {
        let plan = place(&[], &[demand("a", "web", 2)], &Placement::new());
        assert!(plan.placement.is_empty());
        assert_eq!(plan.pending.get(&key("a", "web")), Some(&2));
    }

    #[test]
    fn replicas_on_a_node_are_numbered_from_one() {
        let placement: Placement =
            [(key("a", "web"), vec!["n1".into(), "n2".into(), "n1".into()])].into();
        let mine = replicas_on(&placement, "n1");
        assert_eq!(mine[&key("a", "web")], [1, 3]);
        assert!(replicas_on(&placement, "n9").is_empty());
    }
}
