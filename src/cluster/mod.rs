//! The cluster: several nodes share the shards, each section and each student lives on
//! the node that owns its shard, and operators see and move them.
//!
//! - [`shard_of`]: the stable placement of sections and students (from [`crate::shard`]);
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
//! - [`home`]: a student's request admitted on the student's home node ([`home::HomePass`]);
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
pub mod home;
pub mod hop;
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
pub mod wire;

/// Shard hashing lives in the leaf [`crate::shard`] (the store places rows with it too);
/// re-exported here, where the cluster's readers look for it.
pub use crate::shard::shard_of;
