//! Admitting a student's request on the student's home node, the owner of the student's
//! shard. The edge takes a [`HomePass`] before anything of the request runs, and hands it
//! down as a value: the pass keeps the student's shard on this node until the request has
//! its answer (a handoff of the shard waits for it), and carries the [`HomeClaim`] every
//! section command of the request is sent with, so a section's owner, and the commit
//! itself, refuse a home that has lost the student.

use super::gates::{Kind, Pass};
use super::node::ClusterNode;
use registrar_actors::store::HomeClaim;
use tokio::time::Instant;
use uuid::Uuid;

/// Why this node cannot serve a student's request as the student's home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotHome {
    /// Another node owns the student's shard (or it is still moving at the call
    /// timeout): the request belongs there.
    #[error("this node is not the student's home node")]
    Elsewhere,
    /// This node cannot renew its lease: it may have been declared dead and the student
    /// served elsewhere, and its own map cannot say where. Answered at once (503), not
    /// retried here against the same stale map.
    #[error("this node cannot renew its cluster lease; it serves no student meanwhile")]
    NoLease,
}

/// One request of one student, admitted on this node as the student's home (see the
/// module docs). Shared by the request and the task that decides it, which may outlive
/// the request's wait: the shard stays here until the last holder lets go.
pub struct HomePass {
    student: Uuid,
    claim: HomeClaim,
    /// Keeps the student's shard here while the request runs.
    _pass: Pass,
}

impl HomePass {
    /// Admit a request of `student` if this node is the student's home, waiting at most
    /// until `deadline` while the student's shard is moving.
    pub async fn enter(
        node: &ClusterNode,
        student: Uuid,
        deadline: Instant,
    ) -> Result<Self, NotHome> {
        if !node.holds_lease() {
            return Err(NotHome::NoLease);
        }
        let shard = node.shard_of(student);
        let pass = (node.gates)
            .enter(Kind::Home, shard, deadline)
            .await
            .map_err(|_| NotHome::Elsewhere)?;
        // Read after entering: a handoff that completed meanwhile changed the owner.
        let map = node.map();
        if map.owner(shard) != Some(&node.id) {
            return Err(NotHome::Elsewhere);
        }
        Ok(Self {
            student,
            claim: HomeClaim {
                node: node.id.to_string(),
                shard,
                epoch: map.epoch(shard),
            },
            _pass: pass,
        })
    }

    /// The student this pass admits.
    pub fn student(&self) -> Uuid {
        self.student
    }

    /// The claim the request's section commands carry.
    pub fn claim(&self) -> &HomeClaim {
        &self.claim
    }
}
