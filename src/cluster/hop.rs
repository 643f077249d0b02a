//! What nodes say to each other over the internal hop, whichever way it travels (the
//! binary wire of `super::wire`, or HTTP through `super::peer`): a section call and its
//! answer, a handoff and its result, and what a failed call means.

use registrar_actors::{Command, Reply};
use serde::{Deserialize, Serialize};

/// The header carrying the internal key.
pub const INTERNAL_KEY: &str = "x-registrar-internal";

/// The student's home node as the caller knew it (the actors' commit checks it too).
pub use registrar_actors::HomeClaim;

/// A section command sent to the section's owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SectionCall {
    /// The command (its request id makes a resent call idempotent).
    pub command: Command,
    /// Who sends it for the student, if a student's request.
    pub home: Option<HomeClaim>,
    /// How long the sender waits for this copy, in milliseconds: the owner answers
    /// "nothing recorded" rather than decide it later for nobody (a copy it decided before
    /// is still answered). Absent from older nodes: no deadline.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// The owner's answer to a [`SectionCall`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum SectionAnswer {
    /// Decided and committed, on `node`.
    Decided {
        /// The actor's reply.
        reply: Reply,
        /// The node that decided.
        node: String,
    },
    /// The node does not own the section's shard (any more).
    NotOwner,
    /// The caller is no longer the student's home node.
    StaleHome,
    /// The outcome is unknown (the owner's actor failed holding the command, or its commit
    /// failed at COMMIT): send it again under the same request id to learn it.
    Pending,
    /// Admission control refused it.
    Overloaded,
    /// No such section.
    NotFound,
    /// Nothing was recorded.
    Unavailable {
        /// Why.
        message: String,
    },
}

/// A handoff asked of a shard's owner: hand these shards to `to`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// The receiving node.
    pub to: String,
    /// `(shard, move id)` pairs.
    pub moves: Vec<(u32, i64)>,
}

/// The result of a [`HandoffRequest`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HandoffAnswer {
    /// The shards that changed hands.
    pub moved: Vec<u32>,
    /// Why the others did not.
    pub error: Option<String>,
}

/// Why a hop got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No connection could be made (refused, or not in the connect timeout): the request
    /// never left this node.
    #[error("peer unreachable: {0}")]
    Unreached(String),
    /// A reset, a lost connection, or no answer in time: the peer may or may not have acted.
    #[error("peer did not answer: {0}")]
    Transport(String),
    /// The peer answered something this node does not understand.
    #[error("peer answered {0}")]
    Protocol(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_as_json() {
        let answer = SectionAnswer::Unavailable {
            message: "x".into(),
        };
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(json, r#"{"answer":"unavailable","message":"x"}"#);
        assert!(matches!(
            serde_json::from_str::<SectionAnswer>(r#"{"answer":"not_owner"}"#).unwrap(),
            SectionAnswer::NotOwner
        ));
    }
}
