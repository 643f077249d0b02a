//! The Redis seat-count mirror (fred). After each commit the section's counts are
//! recorded here; a writer task pipelines them to Redis as one hash per section
//! (`<prefix>:section:<id>` with `seats_taken`, `capacity`, `waitlist_length`,
//! `waitlist_capacity`). Recording never blocks the actor: pending counts are coalesced
//! per section (a long outage costs one entry per section, not one per commit), and a
//! failed write is retried with backoff. When Redis comes back after a failure, the mirror
//! is rebuilt from PostgreSQL, since it may have restarted empty. Catalog reads use the
//! mirror and fall back to PostgreSQL; enrollment decisions never read it.
//!
//! Reads go through a breaker: a failed or timed-out read opens it for [`BREAKER_OPEN`],
//! and while it is open reads answer [`MirrorError::Bypassed`] at once, so a Redis outage
//! costs one command timeout, not one per read; a successful write round closes it again.
//! A read that finds a section missing heals it with fill-only writes (`HSETNX`), which can
//! never overwrite counts a commit wrote meanwhile: commits always write the newest counts
//! of a section whole, so a heal either lands first and is overwritten, or finds them there.
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

/// How long reads skip Redis after a failed one (then one read probes it again).
pub const BREAKER_OPEN: Duration = Duration::from_secs(2);

/// Why a mirror operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Redis refused or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// PostgreSQL failed (rebuild).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The breaker is open: Redis failed recently, so the read was not tried.
    #[error("redis mirror bypassed while it recovers")]
    Bypassed,
}

/// Opens for a while after a failure; see the module docs.
#[derive(Debug)]
struct Breaker {
    /// Reference point of `open_until_ms`.
    epoch: std::time::Instant,
    /// Milliseconds after `epoch` until which reads are skipped.
    open_until_ms: AtomicU64,
}

impl Breaker {
    fn new() -> Self {
        Self {
            epoch: std::time::Instant::now(),
            open_until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn allows(&self) -> bool {
        self.now_ms() >= self.open_until_ms.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        let until = self.now_ms() + BREAKER_OPEN.as_millis() as u64;
        self.open_until_ms.fetch_max(until, Ordering::Relaxed);
    }

    fn close(&self) {
        self.open_until_ms.store(0, Ordering::Relaxed);
    }
}

/// The mirror (see module docs).
pub struct SeatMirror {
    client: Client,
    prefix: String,
    /// Counts committed since the last write, latest per section (written whole).
    pending: DashMap<SectionId, Counts>,
    /// Counts read from PostgreSQL for sections missing in Redis (written fill-only).
    heals: DashMap<SectionId, Counts>,
    wake: Notify,
    healthy: AtomicBool,
    breaker: Breaker,
    /// Hashes written since start.
    pub writes: AtomicU64,
    /// Failed write rounds since start.
    pub failures: AtomicU64,
    /// Reads answered from Redis since start.
    pub hits: AtomicU64,
    /// Reads that skipped Redis because the breaker was open.
    pub bypassed: AtomicU64,
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
            heals: DashMap::new(),
            wake: Notify::new(),
            healthy: AtomicBool::new(true),
            breaker: Breaker::new(),
            writes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
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

    /// Queue counts read from PostgreSQL for a section Redis lacks: written only where
    /// Redis still has nothing, never over newer counts (see the module docs).
    pub fn heal(&self, section: SectionId, counts: Counts) {
        self.heals.insert(section, counts);
        self.wake.notify_one();
    }

    /// Sections queued for a heal and not yet written.
    pub fn heals_pending(&self) -> usize {
        self.heals.len()
    }

    /// The mirrored counts of `section`; `Ok(None)` when the key is missing,
    /// [`MirrorError::Bypassed`] at once while the breaker is open.
    pub async fn read(&self, section: SectionId) -> Result<Option<Counts>, MirrorError> {
        if !self.breaker.allows() {
            self.bypassed.fetch_add(1, Ordering::Relaxed);
            return Err(MirrorError::Bypassed);
        }
        let fields: HashMap<String, u32> = match self.client.hgetall(self.key(section)).await {
            Ok(fields) => fields,
            Err(e) => {
                self.breaker.trip();
                return Err(e.into());
            }
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
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
        self.write_as(batch, false).await
    }

    /// Write `batch` whole (`HSET`), or with `fill_only` only the fields Redis lacks
    /// (`HSETNX`, for heals).
    async fn write_as(
        &self,
        batch: &[(SectionId, Counts)],
        fill_only: bool,
    ) -> Result<(), MirrorError> {
        for chunk in batch.chunks(500) {
            let pipeline = self.client.pipeline();
            for (section, c) in chunk {
                let fields = [
                    ("seats_taken", c.seats_taken),
                    ("capacity", c.capacity),
                    ("waitlist_length", c.waitlist_length),
                    ("waitlist_capacity", c.waitlist_capacity),
                ];
                if fill_only {
                    for (field, value) in fields {
                        let _: () = pipeline.hsetnx(self.key(*section), field, value).await?;
                    }
                } else {
                    let _: () = pipeline.hset(self.key(*section), fields.to_vec()).await?;
                }
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
                        self.breaker.close();
                    }
                    Err(e) => {
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        self.healthy.store(false, Ordering::Relaxed);
                        self.breaker.trip();
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
            if batch.is_empty() && !self.heals.is_empty() {
                self.write_heals().await;
                continue;
            }
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
                Ok(()) => {
                    backoff.reset();
                    self.breaker.close();
                }
                Err(e) => {
                    self.breaker.trip();
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

    /// Write the queued heals fill-only; a failure drops them (the next read heals again).
    async fn write_heals(&self) {
        let heals: Vec<(SectionId, Counts)> =
            self.heals.iter().map(|e| (*e.key(), *e.value())).collect();
        for (section, counts) in &heals {
            self.heals.remove_if(section, |_, c| c == counts);
        }
        if let Err(e) = self.write_as(&heals, true).await {
            self.breaker.trip();
            tracing::debug!(error = %e, "redis mirror heal failed");
        }
    }
}
