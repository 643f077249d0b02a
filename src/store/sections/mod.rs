//! The write-through of section actors: [`PgSectionStore`] is the PostgreSQL
//! [`SectionStore`] of one node. It loads a section's seats and waitlist ([`load`]) and
//! commits decided batches through the node-wide committer ([`committer`]), which writes
//! the enrollment rows, the section's counters (fenced by the shard epoch), the audit trail
//! and one outbox row per change, all or nothing ([`write`]).

mod committer;
mod load;
mod write;

pub use committer::{CommitterConfig, CommitterStats};
pub use load::{due_sections, pools};

use crate::store::NodePools;
use crate::supervise::TaskHealth;
use committer::Job;
use registrar_actors::{
    CommitBatch, CommitFuture, SectionId, SectionSnapshot, SectionStore, StoreError, Turn,
};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// PostgreSQL-backed [`SectionStore`] for one node.
pub struct PgSectionStore {
    pool: PgPool,
    node_id: String,
    jobs: mpsc::UnboundedSender<Job>,
    stats: Arc<CommitterStats>,
}

impl PgSectionStore {
    /// A store writing as `node_id`, with the default committer. Spawns the committer
    /// workers, so it must be called inside a tokio runtime; they stop once the store is
    /// dropped and the queue is empty.
    pub fn new(pool: PgPool, node_id: String) -> Self {
        let health = Arc::new(TaskHealth::default());
        let pools = NodePools {
            reads: pool.clone(),
            commits: pool,
        };
        Self::with_committer(pools, node_id, CommitterConfig::default(), health)
    }

    /// A store writing as `node_id` with `config` committer workers on `pools.commits`,
    /// supervised and reported in `health` (as `committer-N`); activations read from
    /// `pools.reads`.
    pub fn with_committer(
        pools: NodePools,
        node_id: String,
        config: CommitterConfig,
        health: Arc<TaskHealth>,
    ) -> Self {
        let (jobs, stats) = committer::spawn(pools.commits, node_id.clone(), config, health);
        Self {
            pool: pools.reads,
            node_id,
            jobs,
            stats,
        }
    }

    /// The committer's counters.
    pub fn stats(&self) -> Arc<CommitterStats> {
        self.stats.clone()
    }
}

/// A database failure as the actor sees it (the cause is logged here).
fn unavailable(err: sqlx::Error) -> StoreError {
    tracing::warn!(error = %err, "section store error");
    StoreError::Unavailable("database error".into())
}

#[async_trait::async_trait]
impl SectionStore for PgSectionStore {
    async fn load(&self, section: SectionId) -> Result<SectionSnapshot, StoreError> {
        load::snapshot(&self.pool, &self.node_id, section).await
    }

    async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        self.enqueue(batch.clone(), Turn::default()).await.map(drop)
    }

    /// Queues the batch before it returns, so a section's batches reach the committer in
    /// the order they were decided.
    fn submit(self: Arc<Self>, batch: CommitBatch, turn: Turn) -> CommitFuture {
        Box::pin(self.enqueue(batch, turn))
    }
}

impl PgSectionStore {
    /// Queue `batch` for the committer now; the future resolves once it is written.
    fn enqueue(
        &self,
        batch: CommitBatch,
        turn: Turn,
    ) -> impl Future<Output = Result<CommitBatch, StoreError>> + Send + 'static {
        let (done, answer) = oneshot::channel();
        let sent = self.jobs.send(Job { batch, turn, done });
        async move {
            if sent.is_err() {
                return Err(StoreError::Unavailable("committer stopped".into()));
            }
            // A committer that failed holding the batch may have committed it.
            answer
                .await
                .unwrap_or_else(|_| Err(StoreError::Unknown("the committer failed".into())))
        }
    }
}
