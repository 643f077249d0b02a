//! The shard map as one node last read it: every shard's owner and epoch, every member's
//! address, state and lease age. Immutable once built; the node swaps in a new one after
//! each refresh (see `node`).

use crate::store::cluster::{NodeRow, NodeState, ShardRow};
use std::collections::HashMap;
use std::sync::Arc;

/// One member as the map shows it.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its row.
    pub row: NodeRow,
    /// Shards it owns.
    pub shards_owned: usize,
}

impl Member {
    /// Whether it takes part: joining, active or draining, with a lease younger than
    /// `lease_ms`.
    pub fn is_live(&self, lease_ms: u64) -> bool {
        self.row.state.takes_part() && self.row.lease_age_ms <= lease_ms as i64
    }

    /// Whether it may receive shards: active with a live lease.
    pub fn is_active(&self, lease_ms: u64) -> bool {
        self.row.state == NodeState::Active && self.is_live(lease_ms)
    }
}

/// One shard's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The owner, if any.
    pub owner: Option<Arc<str>>,
    /// Bumped at every change of owner.
    pub epoch: i64,
}

/// The shard map (see module docs).
#[derive(Clone, Debug, Default)]
pub struct ShardMap {
    /// Index = shard.
    pub shards: Vec<Shard>,
    /// Members by id.
    pub members: HashMap<Arc<str>, Member>,
    /// Whether it was read from the database (the initial map is empty and not loaded).
    pub loaded: bool,
}

impl ShardMap {
    /// The map made of these rows.
    pub fn from_rows(nodes: Vec<NodeRow>, shards: Vec<ShardRow>) -> Self {
        let mut ids: HashMap<String, Arc<str>> = HashMap::new();
        let mut counts: HashMap<Arc<str>, usize> = HashMap::new();
        let shards: Vec<Shard> = shards
            .into_iter()
            .map(|row| {
                let owner = row.node_id.map(|id| {
                    let id = ids
                        .entry(id.clone())
                        .or_insert_with(|| Arc::from(id.as_str()))
                        .clone();
                    *counts.entry(id.clone()).or_default() += 1;
                    id
                });
                Shard {
                    owner,
                    epoch: row.epoch,
                }
            })
            .collect();
        let members = nodes
            .into_iter()
            .map(|row| {
                let id = ids
                    .get(&row.id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(row.id.as_str()));
                let shards_owned = counts.get(&id).copied().unwrap_or(0);
                (id, Member { row, shards_owned })
            })
            .collect();
        Self {
            shards,
            members,
            loaded: true,
        }
    }

    /// The owner of `shard`.
    pub fn owner(&self, shard: u32) -> Option<&Arc<str>> {
        self.shards.get(shard as usize)?.owner.as_ref()
    }

    /// The epoch of `shard` (0 if unknown).
    pub fn epoch(&self, shard: u32) -> i64 {
        self.shards.get(shard as usize).map_or(0, |s| s.epoch)
    }

    /// Where `node` is reached.
    pub fn address(&self, node: &str) -> Option<&str> {
        self.members.get(node).map(|m| m.row.address.as_str())
    }

    /// How many shards `node` owns.
    pub fn owned_by(&self, node: &str) -> usize {
        self.members.get(node).map_or(0, |m| m.shards_owned)
    }

    /// The shards `node` owns.
    pub fn shards_of(&self, node: &str) -> Vec<u32> {
        (0..self.shards.len() as u32)
            .filter(|s| self.owner(*s).is_some_and(|o| &**o == node))
            .collect()
    }

    /// Owners in shard order, as the planner takes them.
    pub fn owners(&self) -> Vec<Option<String>> {
        self.shards
            .iter()
            .map(|s| s.owner.as_ref().map(|o| o.to_string()))
            .collect()
    }

    /// The shards whose owner or epoch differ from `older`'s and that `node` owns in
    /// either map: what this node gained or lost since.
    pub fn changed_for(&self, older: &ShardMap, node: &str) -> Vec<u32> {
        let mine = |s: &Shard| s.owner.as_deref() == Some(node);
        self.shards
            .iter()
            .enumerate()
            .filter(|(i, new)| match older.shards.get(*i) {
                Some(old) => (mine(old) || mine(new)) && old != *new,
                None => mine(new),
            })
            .map(|(i, _)| i as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(shard: i32, node: Option<&str>, epoch: i64) -> ShardRow {
        ShardRow {
            shard,
            node_id: node.map(str::to_string),
            epoch,
            state: crate::store::cluster::ShardState::Active,
        }
    }

    fn node(id: &str, state: &str, lease_age_ms: i64) -> NodeRow {
        NodeRow {
            id: id.into(),
            address: format!("http://{id}"),
            state: state.parse().unwrap(),
            incarnation: None,
            lease_age_ms,
            decisions_per_s: 0.0,
            in_flight: 0,
            hot_sections: Vec::new(),
            shard_load: Default::default(),
            requests_per_s: 0.0,
            p99_ms: None,
            overloaded_per_s: 0.0,
            broker_connected: false,
            redis: crate::store::cluster::MirrorHealth::Off,
        }
    }

    #[test]
    fn owners_counts_and_changes() {
        let old = ShardMap::from_rows(
            vec![node("a", "active", 10), node("b", "active", 10)],
            vec![
                shard(0, Some("a"), 1),
                shard(1, Some("a"), 1),
                shard(2, None, 0),
            ],
        );
        assert_eq!(old.owned_by("a"), 2);
        assert_eq!(old.owned_by("b"), 0);
        assert_eq!(old.shards_of("a"), vec![0, 1]);
        assert_eq!(old.address("b"), Some("http://b"));
        let new = ShardMap::from_rows(
            vec![node("a", "active", 10), node("b", "active", 10)],
            vec![
                shard(0, Some("a"), 1),
                shard(1, Some("b"), 2),
                shard(2, Some("b"), 1),
            ],
        );
        assert_eq!(new.changed_for(&old, "a"), vec![1]);
        assert_eq!(new.changed_for(&old, "b"), vec![1, 2]);
        assert_eq!(new.epoch(1), 2);
    }

    #[test]
    fn liveness_follows_state_and_lease() {
        let map = ShardMap::from_rows(
            vec![
                node("a", "active", 100),
                node("b", "active", 9_000),
                node("c", "draining", 100),
                node("d", "dead", 100),
            ],
            vec![],
        );
        let m = |id: &str| &map.members[id];
        assert!(m("a").is_active(5_000));
        assert!(!m("b").is_live(5_000));
        assert!(m("c").is_live(5_000) && !m("c").is_active(5_000));
        assert!(!m("d").is_live(5_000));
    }
}
