//! The cluster: several nodes share the shards, each section and each student lives on
//! the node that owns its shard, and operators see and move them.
//!
//! - [`shard_of`]: the stable placement of sections and students;
//! - [`node`]: this node in the cluster, the composition of the parts below;
//! - [`membership`]: lease, heartbeat, join and leave, rejoin after being declared dead;
//! - [`map_cache`]: the shard map as this node last read it;
//! - [`listener`]: the notices of the cluster's channel (map changes, rule inputs);
//! - [`load`]: the load report each heartbeat carries;
//! - [`rules`]: the student rule caches the cluster keeps right;
//! - [`clock`]: the database's clock as this node reads it, and its own lease's age;
//! - [`coordinator`]: the one node that assigns shards (orphans, drains, rebalance);
//! - [`handoff`]: the old owner's side of moving shards to another node;
//! - [`gates`]: per-shard admission that lets a handoff quiet a shard;
//! - [`router`]: section commands to the section's owner, local or over the hop;
//! - [`peer`]: the internal HTTP/2 hop and what it carries;
//! - [`map`], [`plan`]: the shard map and the coordinator's pure planning;
//! - [`ops`]: the operator's use cases (move a shard, drain a node, rebalance), and
//!   [`view`], the cluster as the operator API and the command line show it;
//! - [`stats`]: the cluster's figures on this node.
//!
//! PostgreSQL is the only place the map lives (`store::cluster`); every ownership change
//! bumps the shard's epoch, and every commit of a section checks it (`store::sections`),
//! so no timing assumption can let two nodes decide one section.

pub mod clock;
pub mod coordinator;
pub mod gates;
pub mod handoff;
pub mod listener;
pub mod load;
pub mod map;
pub mod map_cache;
pub mod membership;
pub mod node;
pub mod ops;
pub mod peer;
pub mod plan;
pub mod router;
pub mod rules;
pub mod stats;
pub mod view;

/// The shard of a section: FNV-1a (64-bit) over the id's 16 bytes, modulo `shards`.
/// Written out here rather than taken from a hasher crate so it can never change between
/// versions or platforms: the shard of a stored section must stay where it is.
pub fn shard_of(section: uuid::Uuid, shards: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = section
        .as_bytes()
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    (hash % u64::from(shards.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_hash_is_pinned() {
        // Pinned values: changing the hash would move every stored section.
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(shard_of(id, 1024), PINNED_1024);
        assert_eq!(shard_of(uuid::Uuid::nil(), 1024), 101);
        assert!(shard_of(id, 7) < 7);
        assert_eq!(shard_of(id, 1), 0);
    }

    /// FNV-1a of the id above, computed independently.
    const PINNED_1024: u32 = 165;
}
