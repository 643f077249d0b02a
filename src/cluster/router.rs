//! Routing a section command to the section's owner: this node's actor when it owns the
//! section's shard, else one internal hop to the owner. A stale map costs a bounded retry,
//! never a wrong write: the owner checks its ownership before deciding, the epoch fence
//! checks it again at commit, and a resent command carries the same request id, so the
//! actor (or, after a failover, the rows it reloads) answers it without deciding twice.
//!
//! A student's section commands carry the home claim of the [`HomePass`] their request
//! was admitted with (an owner refuses a home that has lost the student), and the answer
//! names the node that decided it, for the `X-Registrar-Node` header.
//!
//! [`HomePass`]: super::home::HomePass

use super::gates::Kind;
use super::home::{HomePass, NotHome};
use super::node::ClusterNode;
use super::peer::{HomeClaim, PeerError, SectionAnswer, SectionCall};
use crate::backoff::Backoff;
use registrar_actors::{Call, CallError, Command, Reply, SectionId, SectionRegistry};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// The answer for a command whose home node lost the student: it was not recorded, and
/// cannot be any more (its commit would be refused).
fn stale_home() -> CallError {
    CallError::Unavailable(
        "this node stopped being the student's home node; nothing was recorded".into(),
    )
}

/// Why a local call got no decision.
#[derive(Debug)]
pub enum LocalError {
    /// This node does not own the section (or its shard is moving away).
    NotOwner,
    /// The caller is no longer the student's home node.
    StaleHome,
    /// The actor's answer.
    Call(CallError),
}

/// A section command's answer and the node that decided it.
#[derive(Debug)]
pub struct Routed {
    /// The actor's answer.
    pub reply: Reply,
    /// The node whose actor decided it.
    pub by: Arc<str>,
}

/// Routes section commands (see module docs).
pub struct SectionRouter {
    node: Arc<ClusterNode>,
    registry: Arc<SectionRegistry>,
}

impl SectionRouter {
    /// A router for `node`, whose actors live in `registry`.
    pub fn new(node: Arc<ClusterNode>, registry: Arc<SectionRegistry>) -> Self {
        Self { node, registry }
    }

    /// The node.
    pub fn node(&self) -> &Arc<ClusterNode> {
        &self.node
    }

    /// The local actors.
    pub fn registry(&self) -> &Arc<SectionRegistry> {
        &self.registry
    }

    /// How long one command may keep being retried: a failover (lease plus a coordinator
    /// step) and a commit fit in it.
    fn patience(&self) -> Duration {
        self.node.lease() * 2 + self.registry.call_timeout()
    }

    /// Admit a request of `student` on this node as the student's home, waiting at most
    /// the call timeout while the student's shard moves.
    pub async fn enter_home(&self, student: Uuid) -> Result<HomePass, NotHome> {
        let deadline = Instant::now() + self.registry.call_timeout();
        HomePass::enter(&self.node, student, deadline).await
    }

    /// Decide `command` on `section`'s owner and wait until it answers.
    ///
    /// Nothing sent yet, or every try answered "nothing recorded": give up after the time
    /// a failover takes (`Unavailable`). Once a try may have reached an owner without an
    /// answer (a lost hop, an unknown outcome), the command may still be decided, queued
    /// behind a stuck commit or on a paused owner. For a student's request the caller
    /// holds the student's lock, and must keep it until the outcome is known, or the
    /// student's next request would pass the rules beside it: so it is sent again, under
    /// the same request id, until it is answered or this node's claim on the student is
    /// gone (then its commit is refused, see [`HomeClaim`], and it can never land).
    pub async fn call(
        &self,
        section: SectionId,
        command: Command,
        home: Option<&HomeClaim>,
    ) -> Result<Routed, CallError> {
        let shard = self.node.shard_of(section.0);
        let give_up = Instant::now() + self.patience();
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(500));
        let stats = &self.node.stats;
        stats.section_calls.fetch_add(1, Ordering::Relaxed);
        let mut last = "no owner for the section's shard yet".to_string();
        let mut in_doubt = false;
        loop {
            let map = self.node.map();
            match map.owner(shard) {
                Some(owner) if *owner == self.node.id => {
                    let deadline = give_up.max(Instant::now() + self.registry.call_timeout());
                    match self
                        .local(section, command.clone(), home, deadline, None)
                        .await
                    {
                        Ok(reply) => {
                            return Ok(Routed {
                                reply,
                                by: self.node.id.clone(),
                            });
                        }
                        Err(LocalError::Call(CallError::Pending)) => {
                            in_doubt = true;
                            last = "the section actor failed; the outcome is unknown".into();
                        }
                        Err(LocalError::Call(e)) => return Err(e),
                        Err(LocalError::StaleHome) => return Err(stale_home()),
                        Err(LocalError::NotOwner) => last = "the section moved".into(),
                    }
                }
                Some(owner) => {
                    let owner = owner.clone();
                    let Some(base) = map.address(&owner).map(str::to_string) else {
                        return Err(CallError::Unavailable(format!("no address for {owner}")));
                    };
                    stats.section_hops.fetch_add(1, Ordering::Relaxed);
                    // The owner gives up on this copy well before the hop times out, so
                    // its answer arrives: a copy decided late would be decided for nobody.
                    let call = SectionCall {
                        command: command.clone(),
                        home: home.cloned(),
                        deadline_ms: Some(self.registry.call_timeout().as_millis() as u64),
                    };
                    let hop = self.node.lease() + self.registry.call_timeout();
                    match self
                        .node
                        .peers
                        .call_section(&base, section, &call, hop)
                        .await
                    {
                        Ok(SectionAnswer::Decided { reply, node }) => {
                            return Ok(Routed {
                                reply,
                                by: Arc::from(node.as_str()),
                            });
                        }
                        Ok(SectionAnswer::NotOwner) => last = format!("{owner} no longer owns it"),
                        Ok(SectionAnswer::StaleHome) => return Err(stale_home()),
                        Ok(SectionAnswer::Overloaded) => return Err(CallError::Overloaded),
                        Ok(SectionAnswer::NotFound) => return Err(CallError::NotFound),
                        Ok(SectionAnswer::Unavailable { message }) => {
                            return Err(CallError::Unavailable(message));
                        }
                        Ok(SectionAnswer::Pending) => {
                            in_doubt = true;
                            last = format!("{owner}: the outcome is unknown");
                        }
                        // Lost after sending: decided or not, resend with the same
                        // request id. Never connected: the command did not leave this node.
                        Err(PeerError::Unreached(e)) => last = format!("{owner}: {e}"),
                        Err(PeerError::Transport(e)) => {
                            in_doubt = true;
                            last = format!("{owner}: {e}");
                        }
                        Err(PeerError::Protocol(e)) => {
                            return Err(CallError::Unavailable(format!("{owner}: {e}")));
                        }
                    }
                }
                None => {}
            }
            if Instant::now() >= give_up {
                if !in_doubt {
                    return Err(CallError::Unavailable(format!(
                        "the section's owner did not answer in time ({last}); nothing was recorded"
                    )));
                }
                match home {
                    // Still the student's home: the command may yet commit; keep at it.
                    Some(claim) if self.claim_holds(claim) => {}
                    // The claim is gone: a commit carrying it is refused from now on.
                    Some(_) => return Err(stale_home()),
                    None => return Err(CallError::Pending),
                }
            }
            stats.section_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff.next_delay()).await;
            let _ = self.node.refresh_soon().await;
        }
    }

    /// Whether this node's map still gives `claim`'s student shard to the claiming node
    /// at the claimed epoch.
    fn claim_holds(&self, claim: &HomeClaim) -> bool {
        let map = self.node.map();
        map.owner(claim.shard).map(|o| o.to_string()).as_deref() == Some(&claim.node)
            && map.epoch(claim.shard) == claim.epoch
    }

    /// Decide `command` on this node's actor of `section`, if this node owns it: the
    /// section's shard is entered (waiting while it moves, at most until `deadline`), and a
    /// caller's home claim is checked against the map first; a command not decided by
    /// `expires` is answered "nothing recorded". Used for local calls and for the hops
    /// peers send.
    pub async fn local(
        &self,
        section: SectionId,
        command: Command,
        home: Option<&HomeClaim>,
        deadline: Instant,
        expires: Option<Instant>,
    ) -> Result<Reply, LocalError> {
        let shard = self.node.shard_of(section.0);
        let _pass = (self.node.gates)
            .enter(Kind::Section, shard, deadline)
            .await
            .map_err(|_| LocalError::NotOwner)?;
        if self.node.map().owner(shard) != Some(&self.node.id) || !self.node.holds_lease() {
            return Err(LocalError::NotOwner);
        }
        if let Some(claim) = home {
            self.check_home(claim).await?;
        }
        match self
            .registry
            .call(
                section,
                Call::new(command).fenced(home.cloned()).expiring(expires),
            )
            .await
        {
            Err(CallError::NotOwner) => Err(LocalError::NotOwner),
            other => other.map_err(LocalError::Call),
        }
    }

    /// Refuse a home node whose claim on the student is older than this node's map (read
    /// again if the claim is newer than the map).
    async fn check_home(&self, claim: &HomeClaim) -> Result<(), LocalError> {
        for attempt in 0..2 {
            let map = self.node.map();
            let epoch = map.epoch(claim.shard);
            let owner = map.owner(claim.shard).map(|o| o.to_string());
            if epoch == claim.epoch && owner.as_deref() == Some(&claim.node) {
                return Ok(());
            }
            if epoch > claim.epoch || attempt == 1 {
                return Err(LocalError::StaleHome);
            }
            let _ = self.node.refresh().await;
        }
        Err(LocalError::StaleHome)
    }
}
