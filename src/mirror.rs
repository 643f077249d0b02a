//! The Redis seat-count mirror (fred). After each commit the section's counts are
//! recorded here; a writer task pipelines them to Redis as one hash per section
//! (`<prefix>:section:<id>` with `seats_taken`, `capacity`, `waitlist_length`,
//! `waitlist_capacity`). Recording never blocks the actor: pending counts are coalesced
//! per section (a long outage costs one entry per section, not one per commit), and a
//! failed write is retried with backoff. When Redis comes back after a failure, the mirror
//! is rebuilt from PostgreSQL, since it may have restarted empty. Catalog reads use the
//! mirror and fall back to PostgreSQL; enrollment decisions never read it.
//!
//! All Redis access of the server is in this module, so replacing fred stays cheap. The
//! rebuild reads PostgreSQL through [`catalog::all_section_counts`]; no SQL lives here.

use crate::backoff::Backoff;
use crate::shutdown::Shutdown;
use crate::store::{DbError, catalog};
use dashmap::DashMap;
use fred::prelude::*;
use registrar_actors::{Counts, SectionId};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest a Redis command may take before the caller gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);

/// Why a mirror operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Redis refused or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// PostgreSQL failed (rebuild).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The mirror (see module docs).
pub struct SeatMirror {
    client: Client,
    prefix: String,
    pending: DashMap<SectionId, Counts>,
    wake: Notify,
    healthy: AtomicBool,
    /// Hashes written since start.
    pub writes: AtomicU64,
    /// Failed write rounds since start.
    pub failures: AtomicU64,
}

impl SeatMirror {
    /// A mirror on `url` with keys under `prefix`. Connects in the background: a Redis that
    /// is down at start delays the mirror, never the server.
    pub fn new(url: &str, prefix: &str) -> Result<Arc<Self>, MirrorError> {
        let config = Config::from_url(url)?;
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(1);
                c.internal_command_timeout = Duration::from_secs(1);
                c.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()?;
        client.connect();
        Ok(Arc::new(Self {
            client,
            prefix: prefix.to_string(),
            pending: DashMap::new(),
            wake: Notify::new(),
            healthy: AtomicBool::new(true),
            writes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }))
    }

    fn key(&self, section: SectionId) -> String {
        format!("{}:section:{}", self.prefix, section)
    }

    /// Whether the last write round succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Queue `counts` for `section` (latest wins); never blocks.
    pub fn record(&self, section: SectionId, counts: Counts) {
        self.pending.insert(section, counts);
        self.wake.notify_one();
    }

    /// The mirrored counts of `section`; `Ok(None)` when the key is missing.
    pub async fn read(&self, section: SectionId) -> Result<Option<Counts>, MirrorError> {
        let fields: HashMap<String, u32> = self.client.hgetall(self.key(section)).await?;
        let get = |k: &str| fields.get(k).copied();
        Ok(
            match (
                get("seats_taken"),
                get("capacity"),
                get("waitlist_length"),
                get("waitlist_capacity"),
            ) {
                (
                    Some(seats_taken),
                    Some(capacity),
                    Some(waitlist_length),
                    Some(waitlist_capacity),
                ) => Some(Counts {
                    seats_taken,
                    capacity,
                    waitlist_length,
                    waitlist_capacity,
                }),
                _ => None,
            },
        )
    }

    async fn write(&self, batch: &[(SectionId, Counts)]) -> Result<(), MirrorError> {
        for chunk in batch.chunks(500) {
            let pipeline = self.client.pipeline();
            for (section, c) in chunk {
                let fields: Vec<(&str, u32)> = vec![
                    ("seats_taken", c.seats_taken),
                    ("capacity", c.capacity),
                    ("waitlist_length", c.waitlist_length),
                    ("waitlist_capacity", c.waitlist_capacity),
                ];
                let _: () = pipeline.hset(self.key(*section), fields).await?;
            }
            let _: Vec<Value> = pipeline.all().await?;
            self.writes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Write every section's committed counts from PostgreSQL; how many.
    pub async fn rebuild(&self, pool: &PgPool) -> Result<usize, MirrorError> {
        let batch = catalog::all_section_counts(pool).await?;
        self.write(&batch).await?;
        Ok(batch.len())
    }

    /// Flush recorded counts to Redis until `shutdown`; rebuild from `pool` at start and
    /// after every recovery from a failure.
    pub async fn run_writer(self: Arc<Self>, pool: PgPool, mut shutdown: Shutdown) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut needs_rebuild = true;
        loop {
            if needs_rebuild {
                match self.rebuild(&pool).await {
                    Ok(n) => {
                        tracing::info!(sections = n, "redis mirror rebuilt from PostgreSQL");
                        needs_rebuild = false;
                        self.healthy.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        self.healthy.store(false, Ordering::Relaxed);
                        tracing::debug!(error = %e, "redis mirror rebuild failed; retrying");
                        if shutdown.sleep(backoff.next_delay()).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let batch: Vec<(SectionId, Counts)> = self
                .pending
                .iter()
                .map(|e| (*e.key(), *e.value()))
                .collect();
            if batch.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.recv() => return,
                }
                continue;
            }
            // Remove only what is being written and unchanged since; newer counts stay queued.
            for (section, counts) in &batch {
                self.pending.remove_if(section, |_, c| c == counts);
            }
            match self.write(&batch).await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    self.healthy.store(false, Ordering::Relaxed);
                    tracing::debug!(error = %e, "redis mirror write failed; will rebuild");
                    for (section, counts) in batch {
                        self.pending.entry(section).or_insert(counts);
                    }
                    needs_rebuild = true;
                    if shutdown.sleep(backoff.next_delay()).await {
                        return;
                    }
                }
            }
        }
    }
}
