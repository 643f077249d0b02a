//! The coordinator's shard planning, as pure functions over the shard map: which live node
//! takes the shards of nodes that died, and which handoffs bring a cluster to a fair share
//! (by shard count, or by load). No I/O: the coordinator reads the map, plans here, and
//! carries the plan out in PostgreSQL (the epoch bump is what makes a move safe); planning
//! is deterministic, so two coordinators reading the same map plan the same moves.
//!
//! Not wired yet: the membership table, the coordinator and the handoff that use these
//! plans are the cluster work still to come (see `cluster`).

use std::collections::{BTreeMap, HashMap, HashSet};

/// Who owns each shard: index = shard, `None` = unowned.
pub type ShardMap = [Option<String>];

/// One handoff: `shard` moves from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The shard.
    pub shard: u32,
    /// Its owner now.
    pub from: String,
    /// Its owner after the move.
    pub to: String,
}

/// Shards per live node (every live node listed, with zero if it owns none).
fn counts<'a>(map: &'a ShardMap, live: &'a [String]) -> BTreeMap<&'a str, usize> {
    let mut counts: BTreeMap<&str, usize> = live.iter().map(|n| (n.as_str(), 0)).collect();
    for owner in map.iter().flatten() {
        if let Some(n) = counts.get_mut(owner.as_str()) {
            *n += 1;
        }
    }
    counts
}

/// The live node with the fewest shards (ties: the smallest id).
fn least_loaded<'a>(counts: &BTreeMap<&'a str, usize>) -> Option<&'a str> {
    counts
        .iter()
        .min_by_key(|(node, n)| (**n, **node))
        .map(|(node, _)| *node)
}

/// Give every shard whose owner is not live (dead, left, or none) to a live node, the
/// least loaded first; the new owner per shard, in shard order. Empty if no node is live.
pub fn reassign_orphans(map: &ShardMap, live: &[String]) -> Vec<(u32, String)> {
    let mut counts = counts(map, live);
    if counts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (shard, owner) in map.iter().enumerate() {
        let orphan = owner.as_deref().is_none_or(|o| !counts.contains_key(o));
        if orphan && let Some(to) = least_loaded(&counts) {
            *counts.get_mut(to).expect("a live node") += 1;
            out.push((shard as u32, to.to_string()));
        }
    }
    out
}

/// Up to `max_moves` handoffs toward a fair share by count: each takes a shard from the
/// live node with the most shards to the one with the fewest, while they differ by more
/// than one. Orphans are not moved here (see [`reassign_orphans`]); a node never gives a
/// shard it does not own, and no shard moves twice in one plan.
pub fn rebalance_by_count(map: &ShardMap, live: &[String], max_moves: usize) -> Vec<Move> {
    rebalance_by_count_pinned(map, live, max_moves, &HashSet::new())
}

/// [`rebalance_by_count`] where the `pinned` shards count for their owners but never move
/// (an operator placed them).
pub fn rebalance_by_count_pinned(
    map: &ShardMap,
    live: &[String],
    max_moves: usize,
    pinned: &HashSet<u32>,
) -> Vec<Move> {
    let mut counts = counts(map, live);
    let mut owned: HashMap<&str, Vec<u32>> = HashMap::new();
    for (shard, owner) in map.iter().enumerate() {
        if pinned.contains(&(shard as u32)) {
            continue;
        }
        if let Some(o) = owner.as_deref().filter(|o| counts.contains_key(o)) {
            owned.entry(o).or_default().push(shard as u32);
        }
    }
    let mut moves = Vec::new();
    while moves.len() < max_moves {
        let Some(to) = least_loaded(&counts) else {
            break;
        };
        let Some((&from, &most)) = counts
            .iter()
            .max_by_key(|(node, n)| (**n, std::cmp::Reverse(**node)))
        else {
            break;
        };
        if most <= counts[to] + 1 {
            break;
        }
        // The highest shard the busiest node owns (deterministic, and spreads the moves).
        let Some(shard) = owned.get_mut(from).and_then(Vec::pop) else {
            break;
        };
        *counts.get_mut(from).expect("live") -= 1;
        *counts.get_mut(to).expect("live") += 1;
        moves.push(Move {
            shard,
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    moves
}

/// Up to `max_moves` handoffs that take the hottest shards off the busiest node: while the
/// busiest live node's load exceeds the least busy one's, move its hottest shard whose move
/// does not make the receiver busier than the giver was. `load` is decisions per second per
/// shard (missing = 0), as the nodes report it.
pub fn rebalance_by_load(
    map: &ShardMap,
    live: &[String],
    load: &HashMap<u32, f64>,
    max_moves: usize,
) -> Vec<Move> {
    let mut node_load: BTreeMap<&str, f64> = live.iter().map(|n| (n.as_str(), 0.0)).collect();
    let mut owned: HashMap<&str, Vec<(f64, u32)>> = HashMap::new();
    for (shard, owner) in map.iter().enumerate() {
        let Some(o) = owner.as_deref().filter(|o| node_load.contains_key(o)) else {
            continue;
        };
        let l = load.get(&(shard as u32)).copied().unwrap_or(0.0).max(0.0);
        *node_load.get_mut(o).expect("live") += l;
        owned.entry(o).or_default().push((l, shard as u32));
    }
    for shards in owned.values_mut() {
        // Coldest first, so `pop` yields the hottest (ties: the highest shard).
        shards.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    let mut moves = Vec::new();
    while moves.len() < max_moves {
        let busiest = node_load
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(n, l)| (*n, *l));
        let idlest = node_load
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(b.0)))
            .map(|(n, l)| (*n, *l));
        let (Some((from, from_load)), Some((to, to_load))) = (busiest, idlest) else {
            break;
        };
        if from == to || from_load <= to_load {
            break;
        }
        // The hottest shard that still narrows the gap: after the move the receiver must
        // stay below what the giver carried.
        let Some(shards) = owned.get_mut(from) else {
            break;
        };
        let Some(pos) = shards
            .iter()
            .rposition(|(l, _)| *l > 0.0 && to_load + l < from_load)
        else {
            break;
        };
        let (l, shard) = shards.remove(pos);
        *node_load.get_mut(from).expect("live") -= l;
        *node_load.get_mut(to).expect("live") += l;
        moves.push(Move {
            shard,
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node-{i}")).collect()
    }

    fn apply_orphans(map: &mut [Option<String>], plan: &[(u32, String)]) {
        for (shard, to) in plan {
            map[*shard as usize] = Some(to.clone());
        }
    }

    fn apply_moves(map: &mut [Option<String>], plan: &[Move]) {
        for m in plan {
            assert_eq!(map[m.shard as usize].as_deref(), Some(m.from.as_str()));
            map[m.shard as usize] = Some(m.to.clone());
        }
    }

    #[test]
    fn the_first_node_of_an_empty_cluster_takes_every_shard() {
        let map = vec![None; 1024];
        let plan = reassign_orphans(&map, &nodes(1));
        assert_eq!(plan.len(), 1024);
        assert!(plan.iter().all(|(_, to)| to == "node-1"));
    }

    #[test]
    fn three_nodes_balance_to_341_341_342() {
        let mut map = vec![Some("node-1".to_string()); 1024];
        let live = nodes(3);
        loop {
            let plan = rebalance_by_count(&map, &live, 64);
            if plan.is_empty() {
                break;
            }
            apply_moves(&mut map, &plan);
        }
        let c = counts(&map, &live);
        let mut shares: Vec<usize> = c.values().copied().collect();
        shares.sort();
        assert_eq!(shares, vec![341, 341, 342]);
    }

    #[test]
    fn pinned_shards_count_but_never_move() {
        // node-1 owns 0..10 and an operator pinned 8 and 9 there.
        let mut map = vec![Some("node-1".to_string()); 10];
        let pinned: HashSet<u32> = [8, 9].into();
        let live = nodes(2);
        loop {
            let plan = rebalance_by_count_pinned(&map, &live, 64, &pinned);
            assert!(plan.iter().all(|m| !pinned.contains(&m.shard)), "{plan:?}");
            if plan.is_empty() {
                break;
            }
            apply_moves(&mut map, &plan);
        }
        let c = counts(&map, &live);
        assert_eq!((c["node-1"], c["node-2"]), (5, 5));
        assert_eq!(map[8].as_deref(), Some("node-1"));
        assert_eq!(map[9].as_deref(), Some("node-1"));
    }

    #[test]
    fn a_dead_nodes_shards_go_to_the_live_ones_evenly() {
        let mut map: Vec<Option<String>> = (0..12)
            .map(|s| Some(format!("node-{}", s % 3 + 1)))
            .collect();
        let live = vec!["node-1".to_string(), "node-2".to_string()];
        let plan = reassign_orphans(&map, &live);
        assert_eq!(plan.len(), 4, "node-3's four shards");
        apply_orphans(&mut map, &plan);
        let c = counts(&map, &live);
        assert_eq!(c["node-1"], 6);
        assert_eq!(c["node-2"], 6);
    }

    #[test]
    fn the_hottest_shard_leaves_the_busiest_node_first() {
        let map: Vec<Option<String>> = vec![
            Some("node-1".into()),
            Some("node-1".into()),
            Some("node-1".into()),
            Some("node-2".into()),
        ];
        let load = HashMap::from([(0, 10.0), (1, 500.0), (2, 20.0), (3, 5.0)]);
        let plan = rebalance_by_load(&map, &nodes(2), &load, 1);
        assert_eq!(
            plan,
            vec![Move {
                shard: 1,
                from: "node-1".into(),
                to: "node-2".into()
            }]
        );
        // One shard carrying everything cannot be split: moving it would only swap roles.
        let lone = vec![Some("node-1".to_string()), None];
        let load = HashMap::from([(0, 900.0)]);
        assert!(rebalance_by_load(&lone, &nodes(2), &load, 4).is_empty());
    }

    fn arb_map() -> impl Strategy<Value = (Vec<Option<String>>, Vec<String>)> {
        (1usize..6, 1usize..200).prop_flat_map(|(n_nodes, n_shards)| {
            let owner = prop::option::of((1..=n_nodes + 2).prop_map(|i| format!("node-{i}")));
            (prop::collection::vec(owner, n_shards), Just(nodes(n_nodes)))
        })
    }

    proptest! {
        #[test]
        fn orphans_then_rebalancing_give_every_shard_a_live_owner_and_a_fair_share(
            (mut map, live) in arb_map(),
            per_round in 1usize..40,
        ) {
            let plan = reassign_orphans(&map, &live);
            apply_orphans(&mut map, &plan);
            prop_assert!(map.iter().all(|o| o.as_ref().is_some_and(|o| live.contains(o))));
            let mut rounds = 0;
            loop {
                let plan = rebalance_by_count(&map, &live, per_round);
                let mut seen = std::collections::HashSet::new();
                prop_assert!(plan.iter().all(|m| seen.insert(m.shard)), "a shard moved twice");
                prop_assert!(plan.len() <= per_round);
                if plan.is_empty() { break; }
                apply_moves(&mut map, &plan);
                rounds += 1;
                prop_assert!(rounds <= map.len(), "rebalancing does not converge");
            }
            let c = counts(&map, &live);
            let (min, max) = (c.values().min().unwrap(), c.values().max().unwrap());
            prop_assert!(max - min <= 1, "shares {c:?}");
        }

        #[test]
        fn load_moves_only_narrow_the_gap(
            (mut map, live) in arb_map(),
            loads in prop::collection::vec(0.0f64..1000.0, 200),
        ) {
            let plan = reassign_orphans(&map, &live);
            apply_orphans(&mut map, &plan);
            let load: HashMap<u32, f64> = loads.iter().enumerate().map(|(s, l)| (s as u32, *l)).collect();
            let total = |map: &[Option<String>]| {
                let mut per: BTreeMap<String, f64> = live.iter().map(|n| (n.clone(), 0.0)).collect();
                for (s, o) in map.iter().enumerate() {
                    *per.get_mut(o.as_ref().unwrap()).unwrap() += load[&(s as u32)];
                }
                per.values().cloned().fold(f64::MIN, f64::max)
            };
            let before = total(&map);
            let plan = rebalance_by_load(&map, &live, &load, 8);
            apply_moves(&mut map, &plan);
            prop_assert!(total(&map) <= before + 1e-6, "the busiest node got busier");
        }
    }
}
