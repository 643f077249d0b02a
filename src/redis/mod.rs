//! Everything the server does with Redis (fred), so replacing the client stays cheap:
//!
//! - [`mirror`]: the seat-count mirror, one hash per section, written after each commit
//!   (and published on the seat channel by the same guarded script);
//! - [`bus`]: the node's subscriber to the seat channel, which hands other nodes' counts to
//!   the sink it was given at startup;
//! - [`wire`]: what both carry ([`SeatCounts`], [`SeatMessage`]) and the channel's name.
//!
//! The module sits just above the store (it reads section counts from PostgreSQL through
//! `store::catalog`) and imports nothing above it: the seat feed that serves streams uses
//! it, never the other way round.

pub mod bus;
pub mod mirror;
pub mod wire;

pub use bus::{BusStats, SeatSink, SeatSubscriber};
pub use mirror::{MirrorError, SeatMirror};
pub use wire::{SeatCounts, SeatMessage};
