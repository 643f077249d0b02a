//! # registrar-actors
//!
//! The decision core of registrar, free of HTTP and SQL:
//!
//! - [`ledger`]: the pure seat and waitlist rules of one section ([`SeatLedger`]), with
//!   its reserved seat pools.
//! - [`attributes`]: the student attributes pools and restrictions are keyed by.
//! - [`student_rules`]: the pure per-student checks (holds, window, add/drop deadlines,
//!   prerequisites, time conflicts, credit limit, duplicate course).
//! - [`gate`]: lock-free admission counters that bound in-flight commands and let an idle
//!   section actor passivate without losing a queued command (loom-tested).
//! - [`store`]: the [`SectionStore`] trait the actor writes through, and the batch it commits.
//! - [`section`]: the [`SectionActor`] (ractor) that decides a batch and commits it once,
//!   deciding the next batch while earlier ones commit.
//! - [`pipeline`]: the pure order in which those batches in flight are answered.
//! - [`registry`]: activation, admission control and passivation of section actors.
//! - `memory` (feature `test-support`): an in-memory [`SectionStore`] for actor tests
//!   and benches.

pub mod attributes;
pub mod gate;
pub mod ids;
pub mod ledger;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod pipeline;
pub mod registry;
pub mod section;
pub mod store;
pub mod student_rules;
mod sync;

pub use attributes::{Attribute, AttributeKind};
pub use gate::{AdmissionGate, Permit};
pub use ids::{DecisionId, PermitId, PoolId, RequestId, SectionId, StudentId};
pub use ledger::{
    CapacityPermit, Change, ChangeKind, Command, Counts, Outcome, Placement, Refusal, ReservePool,
    SeatDrop, SeatLedger, WaitlistEntry,
};
pub use registry::{Call, CallError, RegistryConfig, SectionLoad, SectionRegistry};
pub use section::{Reply, SectionActor, SectionMsg};
pub use store::{
    AttemptRecord, CommitBatch, CommitFuture, CommitObserver, HomeClaim, SectionSnapshot,
    SectionStore, StoreError, Turn, Version,
};
