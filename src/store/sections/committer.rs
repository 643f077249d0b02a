//! The node-wide committer: a section actor's batch goes to a queue. Each of a few
//! workers takes every batch queued when it becomes free (many sections' batches, up to
//! [`CommitterConfig::max_rows`] decisions) and writes them in ONE transaction. Under a
//! flash spread over hundreds of sections this turns hundreds of small transactions per
//! second into a few large ones; one hot section keeps its own actor-level batching and
//! pays one queue hop. The queue is unbounded but holds at most a few batches per active
//! section (an actor has at most `REGISTRAR_SECTION_PIPELINE` committing).
//!
//! A fenced batch is left out of its group and answered [`StoreError::Fenced`]; the others
//! commit. If the transaction fails, each batch of the group is retried alone once, so one
//! bad batch cannot fail its neighbours.
//!
//! A section may have several batches queued (its actor decides the next while earlier
//! ones commit). Each transaction waits, before it begins, until the earlier batches of
//! its sections have settled ([`Turn`]): a transaction sees what they committed, and reads
//! none of their rows uncommitted. Workers take the queue in order, so such waits only
//! ever point at transactions taken earlier, and no transaction holds a lock while it
//! waits.

use super::write::write_group;
use crate::faults;
use crate::supervise::{TaskHealth, supervise};
use registrar_actors::{CommitBatch, StoreError, Turn};
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Tuning of the node-wide committer.
#[derive(Clone, Copy, Debug)]
pub struct CommitterConfig {
    /// Transactions in flight at once; each worker takes everything queued when it is free.
    pub workers: usize,
    /// Most decisions (audit rows) merged into one transaction.
    pub max_rows: usize,
    /// Longest a group commit may take, BEGIN to COMMIT; past it the group fails (a
    /// connection that never answers must not stall a worker forever).
    pub timeout: Duration,
    /// Run the workers on a thread of their own (see [`spawn`]); otherwise on the runtime
    /// that creates the store.
    pub own_thread: bool,
}

impl Default for CommitterConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_rows: 4096,
            timeout: Duration::from_secs(15),
            own_thread: false,
        }
    }
}

/// Counters of the node-wide committer, for `/metrics`.
#[derive(Debug, Default)]
pub struct CommitterStats {
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// Section batches committed in them.
    pub batches: AtomicU64,
    /// Microseconds spent from BEGIN to COMMIT or failure, summed (fenced or failed
    /// attempts included).
    pub busy_micros: AtomicU64,
    /// Decisions per transaction and time per transaction (exported as histograms).
    pub histograms: crate::metrics::CommitHistograms,
}

/// One section batch waiting for the committer.
pub(super) struct Job {
    pub(super) batch: CommitBatch,
    /// Its place in its section's commit order: waited for before its transaction
    /// begins, passed on once it settled (dropped with the job otherwise).
    pub(super) turn: Turn,
    /// Answered with the batch once committed.
    pub(super) done: oneshot::Sender<Result<CommitBatch, StoreError>>,
}

/// Start `config.workers` committer workers writing as `node_id`; they stop once the
/// returned sender is dropped and the queue is empty.
///
/// With [`CommitterConfig::own_thread`] the workers run on a thread of their own (a
/// current-thread tokio runtime), not among the request handlers: a commit is a chain of
/// round trips to PostgreSQL, and on a busy node each answer otherwise waits in a worker's
/// run queue behind HTTP tasks, which stretches every transaction and, for a hot section,
/// every batch after it. Faster commits also leave less time for a group to gather, so on
/// a CPU-bound node a decision costs more; that is why it is an option.
pub(super) fn spawn(
    pool: PgPool,
    node_id: String,
    config: CommitterConfig,
    health: Arc<TaskHealth>,
) -> (mpsc::UnboundedSender<Job>, Arc<CommitterStats>) {
    let (jobs, queue) = mpsc::unbounded_channel();
    let queue = Arc::new(Mutex::new(queue));
    let stats = Arc::new(CommitterStats::default());
    let max_rows = config.max_rows.max(1);
    let committers: Vec<Committer> = (0..config.workers.max(1))
        .map(|_| Committer {
            pool: pool.clone(),
            node_id: node_id.clone(),
            stats: stats.clone(),
            timeout: config.timeout,
        })
        .collect();
    let run = async move {
        let workers: Vec<_> = committers
            .into_iter()
            .enumerate()
            .map(|(worker, committer)| {
                let queue = queue.clone();
                // A panicking worker loses the group it held (its actors see the commit
                // fail and reload) and is restarted on the same queue.
                supervise(
                    format!("committer-{worker}"),
                    health.clone(),
                    None,
                    move || committer.clone().run(queue.clone(), max_rows),
                )
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
    };
    if !config.own_thread {
        tokio::spawn(run);
        return (jobs, stats);
    }
    // The workers are handed to the thread once it runs; without a thread of its own the
    // committer still works, among the rest.
    let (hand, take) = std::sync::mpsc::sync_channel(1);
    let thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            std::thread::Builder::new()
                .name("committer".into())
                .spawn(move || {
                    if let Ok(run) = take.recv() {
                        runtime.block_on(run);
                    }
                })
        });
    let unsent = match thread {
        Ok(_) => hand.send(run).err().map(|e| e.0),
        Err(err) => {
            tracing::warn!(error = %err, "no committer thread; committing on the shared runtime");
            Some(run)
        }
    };
    if let Some(run) = unsent {
        tokio::spawn(run);
    }
    (jobs, stats)
}

/// Answer `job` unavailable (nothing recorded) for a failpoint and pass its turn on;
/// false, to drop it from its group.
fn fail_job(job: &mut Job, why: &str) -> bool {
    let (done, _) = oneshot::channel();
    let done = std::mem::replace(&mut job.done, done);
    let _ = done.send(Err(StoreError::Unavailable(why.into())));
    job.turn.pass();
    false
}

/// How long failpoint `commit-fails-late` (keyed by student) hangs `batch` before failing
/// it, if it decides that student's command.
fn fails_late(batch: &CommitBatch) -> Option<std::time::Duration> {
    batch
        .attempts
        .iter()
        .filter_map(|a| a.student)
        .find_map(|s| faults::delay("commit-fails-late", &s))
}

/// One committer worker.
#[derive(Clone)]
struct Committer {
    pool: PgPool,
    node_id: String,
    stats: Arc<CommitterStats>,
    /// Longest a group commit may take.
    timeout: Duration,
}

impl Committer {
    /// Take every queued batch (up to `max_rows` decisions) and commit them together,
    /// until the store is dropped.
    async fn run(self, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>, max_rows: usize) {
        loop {
            let group = {
                let mut queue = queue.lock().await;
                let Some(first) = queue.recv().await else {
                    return;
                };
                let mut rows = first.batch.attempts.len();
                let mut group = vec![first];
                while rows < max_rows {
                    let Ok(job) = queue.try_recv() else { break };
                    rows += job.batch.attempts.len();
                    group.push(job);
                }
                group
            };
            self.commit_group(group).await;
        }
    }

    /// Commit a group and answer each job. Batches of the same section go to separate
    /// transactions, in order.
    async fn commit_group(&self, mut group: Vec<Job>) {
        // The fault suite's stand-in for a node that lost PostgreSQL, one section at a time.
        group.retain_mut(|job| {
            let down = faults::hit("commit-unavailable", &job.batch.section);
            !down || fail_job(job, "failpoint commit-unavailable")
        });
        // A commit stuck in PostgreSQL, for the fault suite.
        if let Some(stall) = group
            .iter()
            .find_map(|job| faults::delay("commit-stall", &job.batch.section))
        {
            tokio::time::sleep(stall).await;
        }
        // A commit that hangs, then fails as if PostgreSQL were gone, for the batch deciding
        // one student's command (while later batches of its section queue behind it).
        if let Some(hang) = group.iter().find_map(|job| fails_late(&job.batch)) {
            tokio::time::sleep(hang).await;
            group.retain_mut(|job| {
                fails_late(&job.batch).is_none() || fail_job(job, "failpoint commit-fails-late")
            });
        }
        while !group.is_empty() {
            let mut seen = HashSet::new();
            let (now, later): (Vec<Job>, Vec<Job>) = group
                .into_iter()
                .partition(|job| seen.insert(job.batch.section));
            group = later;
            let mut now = now;
            for job in &mut now {
                job.turn.wait().await;
            }
            let batches: Vec<&CommitBatch> = now.iter().map(|job| &job.batch).collect();
            let results = match self.write(&batches).await {
                Ok(results) => results,
                // Retried alone only when nothing was recorded: after a failed COMMIT the
                // group may be in, and the actors reload to find out.
                Err(err) if batches.len() > 1 && !matches!(err, StoreError::Unknown(_)) => {
                    tracing::warn!(error = %err, batches = batches.len(), "group commit failed; retrying each batch alone");
                    let mut results = Vec::with_capacity(batches.len());
                    for batch in &batches {
                        results.push(match self.write(&[batch]).await {
                            Ok(mut one) => one.pop().unwrap_or(Err(StoreError::Fenced)),
                            Err(err) => Err(err),
                        });
                    }
                    results
                }
                Err(err) => vec![Err(err); batches.len()],
            };
            for (Job { batch, done, turn }, result) in now.into_iter().zip(results) {
                drop(turn);
                let result = match result {
                    Ok(()) if faults::hit("commit-reply-lost", &batch.section) => {
                        Err(StoreError::Unknown("failpoint commit-reply-lost".into()))
                    }
                    other => other.map(|()| batch),
                };
                let _ = done.send(result);
            }
        }
    }

    /// [`write_group`], counted.
    async fn write(
        &self,
        batches: &[&CommitBatch],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let started = Instant::now();
        let results = match tokio::time::timeout(
            self.timeout,
            write_group(&self.pool, &self.node_id, batches),
        )
        .await
        {
            Ok(written) => written,
            Err(_) => {
                // Dropping the transaction mid-flight closes its connection: PostgreSQL
                // rolls it back unless COMMIT had already been processed. Either way the
                // actors reload from the database, which then holds the truth, and the
                // callers hear that the outcome is unknown.
                tracing::warn!(batches = batches.len(), timeout = ?self.timeout, "group commit timed out");
                Err(StoreError::Unknown("the commit timed out".into()))
            }
        };
        let s = &self.stats;
        let took = started.elapsed();
        s.busy_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        s.histograms.duration.observe(took.as_secs_f64());
        let committed = results
            .as_ref()
            .map_or(0, |r| r.iter().filter(|r| r.is_ok()).count());
        if committed > 0 {
            let decisions: usize = batches.iter().map(|b| b.attempts.len()).sum();
            s.histograms.batch_size.observe(decisions as f64);
            s.transactions.fetch_add(1, Ordering::Relaxed);
            s.batches.fetch_add(committed as u64, Ordering::Relaxed);
        }
        results
    }
}
