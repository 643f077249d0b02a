//! The section registry: finds or activates the actor of a section, applies admission
//! control, and forgets actors that passivated or stopped.
//!
//! Activation is lazy: the first command for a section loads its snapshot from the store
//! and spawns the actor; concurrent first commands share one activation.
//!
//! The registry supervises its actors: an actor that ends, by passivation, fencing or a
//! panic, closes its gate and is forgotten (see `section`), and failures are counted for
//! `/metrics`. A command the failed actor had taken is answered `Unavailable` (outcome
//! unknown) and never resent; only commands it never saw are sent to a fresh activation.

use crate::gate::{AdmissionGate, Permit, Refused};
use crate::ids::SectionId;
use crate::ledger::Command;
use crate::section::{
    Envelope, Reply, SectionActor, SectionArgs, SectionConfig, SectionError, SectionMsg,
};
use crate::store::{CommitObserver, HomeClaim, SectionStore, StoreError};
use dashmap::DashMap;
use ractor::{Actor, ActorRef};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Registry tuning.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Per-actor tuning.
    pub section: SectionConfig,
    /// Most commands queued or being decided for one section.
    pub section_max_in_flight: usize,
    /// Most commands queued or being decided on this node.
    pub node_max_in_flight: usize,
    /// How long a caller waits for its batch to commit.
    pub call_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            section: SectionConfig::default(),
            section_max_in_flight: 5_000,
            node_max_in_flight: 50_000,
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a command got no decision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Admission control refused it: too many commands in flight.
    #[error("too many requests in flight")]
    Overloaded,
    /// No such section.
    #[error("section not found")]
    NotFound,
    /// Nothing was recorded (commit failed, store down, actor stopped).
    #[error("not recorded: {0}")]
    Unavailable(String),
    /// This node does not own the section's shard (any more).
    #[error("this node does not own the section")]
    NotOwner,
    /// No answer within the call timeout; the command may still be decided later. A retry
    /// with the same request id gets the decision without deciding twice.
    #[error("no decision yet")]
    Pending,
}

#[derive(Clone)]
struct ActorSlot {
    gate: Arc<AdmissionGate>,
    actor: Arc<OnceCell<ActorRef<SectionMsg>>>,
    /// Commands admitted since activation (the load figures sample it).
    calls: Arc<AtomicU64>,
}

/// One active section's load: commands admitted since its activation and in flight now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionLoad {
    /// The section.
    pub section: SectionId,
    /// Commands admitted since the actor was activated.
    pub calls: u64,
    /// Commands queued or being decided now.
    pub in_flight: usize,
}

type Slots = Arc<DashMap<SectionId, ActorSlot>>;

/// A command for a section's actor, and how its caller waits for it.
#[derive(Clone, Debug)]
pub struct Call {
    /// What to decide.
    pub command: Command,
    /// The home claim of the student's request it belongs to: its commit also checks
    /// that the home still holds the student (see [`crate::store::AttemptRecord::home`]).
    pub home: Option<HomeClaim>,
    /// The caller stops waiting then: a command not decided by then is answered
    /// [`CallError::Unavailable`] (nothing recorded) instead of being decided for nobody.
    pub expires: Option<tokio::time::Instant>,
    /// Wait at most this long for the answer ([`CallError::Pending`] then; the command
    /// may still be decided). `None`: until the actor answers, however long its batch
    /// takes to commit. The actor always answers a command it took (a decision, a failed
    /// commit, or an unknown outcome if it failed), so this ends once the commit path
    /// does; callers that must know the outcome before going on (a student's lock) use it.
    pub wait: Option<Duration>,
}

impl Call {
    /// `command`, waited for until answered, with no home claim and no expiry.
    pub fn new(command: Command) -> Self {
        Self {
            command,
            home: None,
            expires: None,
            wait: None,
        }
    }

    /// Checked at commit against `home` (see [`Call::home`]).
    pub fn fenced(self, home: Option<HomeClaim>) -> Self {
        Self { home, ..self }
    }

    /// Not decided after `expires` (see [`Call::expires`]).
    pub fn expiring(self, expires: Option<tokio::time::Instant>) -> Self {
        Self { expires, ..self }
    }

    /// Waited for at most `limit` (see [`Call::wait`]).
    pub fn waiting_at_most(self, limit: Duration) -> Self {
        Self {
            wait: Some(limit),
            ..self
        }
    }
}

/// Finds, activates and bounds section actors.
pub struct SectionRegistry {
    slots: Slots,
    node_gate: Arc<AdmissionGate>,
    store: Arc<dyn SectionStore>,
    observer: Arc<dyn CommitObserver>,
    config: RegistryConfig,
    /// Section actors that ended by failing (a panic), since start.
    failures: Arc<AtomicU64>,
}

impl SectionRegistry {
    /// A registry writing through `store`.
    pub fn new(
        store: Arc<dyn SectionStore>,
        observer: Arc<dyn CommitObserver>,
        config: RegistryConfig,
    ) -> Self {
        Self {
            slots: Arc::new(DashMap::new()),
            node_gate: Arc::new(AdmissionGate::new(config.node_max_in_flight)),
            store,
            observer,
            config,
            failures: Arc::default(),
        }
    }

    /// Section actors that failed (panicked) since start; each was cleaned up and its
    /// taken commands answered.
    pub fn actor_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Commands in flight on this node.
    pub fn in_flight(&self) -> usize {
        self.node_gate.in_flight()
    }

    /// Sections with a live actor.
    pub fn active_sections(&self) -> usize {
        self.slots.len()
    }

    /// How long a caller of [`SectionRegistry::call`] should wait for a decision.
    pub fn call_timeout(&self) -> Duration {
        self.config.call_timeout
    }

    /// Decide `call`'s command on `section`'s actor and wait for its answer (see [`Call`]
    /// for how long, and what the commit checks).
    pub async fn call(&self, section: SectionId, call: Call) -> Result<Reply, CallError> {
        let Call {
            command,
            home,
            expires,
            wait,
        } = call;
        self.call_within(section, command, wait, home, expires)
            .await
    }

    async fn call_within(
        &self,
        section: SectionId,
        command: Command,
        timeout: Option<Duration>,
        home: Option<HomeClaim>,
        expires: Option<tokio::time::Instant>,
    ) -> Result<Reply, CallError> {
        // A closed gate means the actor passivated between lookup and admission: retry with
        // a fresh activation. Bounded, since each round removes the closed slot.
        for _ in 0..4 {
            let slot = self
                .slots
                .entry(section)
                .or_insert_with(|| ActorSlot {
                    gate: Arc::new(AdmissionGate::new(self.config.section_max_in_flight)),
                    actor: Arc::new(OnceCell::new()),
                    calls: Arc::default(),
                })
                .clone();
            let permit = match Permit::acquire(&self.node_gate, &slot.gate) {
                Ok(p) => p,
                Err(Refused::Full) => return Err(CallError::Overloaded),
                Err(Refused::Closed) => {
                    self.forget(section, &slot.gate);
                    continue;
                }
            };
            let actor = match slot
                .actor
                .get_or_try_init(|| self.activate(section, &slot))
                .await
            {
                Ok(actor) => actor.clone(),
                Err(err) => {
                    slot.gate.force_close();
                    self.forget(section, &slot.gate);
                    return Err(err);
                }
            };
            slot.calls.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let envelope = Envelope::new(command.clone(), tx.into(), permit)
                .with_home(home.clone())
                .expiring(expires);
            if actor.send_message(SectionMsg::Command(envelope)).is_err() {
                // The actor is stopping; its post_stop forgets the slot.
                slot.gate.force_close();
                self.forget(section, &slot.gate);
                continue;
            }
            let answer = match timeout {
                Some(limit) => tokio::time::timeout(limit, rx).await,
                None => Ok(rx.await),
            };
            return match answer {
                Err(_) => Err(CallError::Pending),
                Ok(Err(_)) => {
                    // The reply port was dropped unanswered: the actor ended with this
                    // command still in its mailbox (a taken command is always answered),
                    // so it was never decided. Retry it on a fresh activation.
                    slot.gate.force_close();
                    self.forget(section, &slot.gate);
                    continue;
                }
                Ok(Ok(Err(SectionError::Fenced))) => Err(CallError::NotOwner),
                Ok(Ok(Err(SectionError::Expired))) => Err(CallError::Unavailable(
                    "the caller's deadline passed before a decision".into(),
                )),
                Ok(Ok(Err(SectionError::Unavailable))) => {
                    Err(CallError::Unavailable("commit failed".into()))
                }
                // Maybe recorded: like a decision still pending, a retry under the same
                // request id gets what was recorded (the actor reloads and recognises it).
                Ok(Ok(Err(SectionError::Unknown))) => Err(CallError::Pending),
                Ok(Ok(Ok(reply))) => Ok(reply),
            };
        }
        Err(CallError::Unavailable("section actor kept stopping".into()))
    }

    /// The load of every active section.
    pub fn section_loads(&self) -> Vec<SectionLoad> {
        self.slots
            .iter()
            .map(|s| SectionLoad {
                section: *s.key(),
                calls: s.calls.load(Ordering::Relaxed),
                in_flight: s.gate.in_flight(),
            })
            .collect()
    }

    /// Stop every actor after its in-flight batch (graceful shutdown): each one first
    /// decides and commits what is queued in its mailbox, then stops.
    pub async fn stop_all(&self) {
        self.stop_where(|_| true).await
    }

    /// Stop the actors of the sections `which` selects, as [`SectionRegistry::stop_all`]
    /// does (a handoff stops the actors of the shards it moves).
    pub async fn stop_where(&self, which: impl Fn(SectionId) -> bool) {
        let actors: Vec<ActorRef<SectionMsg>> = self
            .slots
            .iter()
            .filter(|s| which(*s.key()))
            .filter_map(|s| s.actor.get().cloned())
            .collect();
        // A Flush behind every queued command, then drain: nothing queued is dropped. All
        // actors drain at once; then wait for each to have stopped.
        for actor in &actors {
            let _ = actor.send_message(SectionMsg::Flush);
            let _ = actor.drain();
        }
        for actor in &actors {
            actor.wait(None).await.ok();
        }
    }

    async fn activate(
        &self,
        section: SectionId,
        slot: &ActorSlot,
    ) -> Result<ActorRef<SectionMsg>, CallError> {
        let snapshot = self.store.load(section).await.map_err(|e| match e {
            StoreError::NotFound => CallError::NotFound,
            StoreError::Fenced => CallError::NotOwner,
            StoreError::Unavailable(m) | StoreError::Unknown(m) => CallError::Unavailable(m),
        })?;
        let slots = self.slots.clone();
        let failures = self.failures.clone();
        let args = SectionArgs {
            id: section,
            snapshot,
            store: self.store.clone(),
            observer: self.observer.clone(),
            gate: slot.gate.clone(),
            on_stop: Arc::new(move |id, gate, failed| {
                if failed {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                forget_in(&slots, id, gate)
            }),
            config: self.config.section.clone(),
        };
        let (actor, _join) = Actor::spawn(None, SectionActor, args)
            .await
            .map_err(|e| CallError::Unavailable(format!("actor failed to start: {e}")))?;
        Ok(actor)
    }

    fn forget(&self, section: SectionId, gate: &Arc<AdmissionGate>) {
        forget_in(&self.slots, section, gate);
    }
}

/// Remove `section`'s slot if it still holds `gate` (a newer activation may have replaced it).
fn forget_in(slots: &Slots, section: SectionId, gate: &Arc<AdmissionGate>) {
    slots.remove_if(&section, |_, slot| Arc::ptr_eq(&slot.gate, gate));
}
