//! The Redis seat-count mirror (fred). After each commit the section's counts are
//! recorded here with their [`Version`]; a writer task pipelines them to Redis as one hash
//! per section (`<prefix>:section:<id>` with `seats_taken`, `capacity`, `waitlist_length`,
//! `waitlist_capacity`, and the version as `epoch` and `seq`) and publishes each on the
//! seat channel `<prefix>:seats`, which every node's subscriber (the sibling `bus`) listens
//! to. Recording never blocks the actor: pending counts are coalesced per section (a long
//! outage costs one entry per section, not one per commit), and a failed write is retried
//! with backoff. When Redis comes back after a failure, the mirror is rebuilt from
//! PostgreSQL, since it may have restarted empty. Catalog reads use the mirror and fall
//! back to PostgreSQL; enrollment decisions never read it.
//!
//! Several nodes write these hashes (a section moves between nodes, and the old owner's
//! last write may arrive after the new owner's first), so every write goes through one Lua
//! script ([`GUARDED_WRITE`]) that writes only over an older version (or none) and
//! publishes only what it wrote: neither the mirror nor a seat stream ever goes back to
//! older counts, whatever order the writes arrive in.
//!
//! Reads go through a breaker: a failed or timed-out read opens it for [`BREAKER_OPEN`],
//! and while it is open reads answer [`MirrorError::Bypassed`] at once, so a Redis outage
//! costs one command timeout, not one per read; a successful write round closes it again.
//! A read that finds a section missing queues a heal: the writer reads the section from
//! PostgreSQL with the version of that read ([`Version::read_at`]: newer than every commit
//! of an older epoch, older than every commit of the current one) and writes it through
//! the same guard, without publishing. A heal therefore fills a missing section (or one
//! left by an older owner) and can never overwrite counts a commit wrote meanwhile; the
//! rebuild writes the same way.
//!
//! All Redis access of the server is in this module and its pub/sub sibling `bus`, so
//! replacing fred stays cheap. PostgreSQL is read through
//! [`catalog::all_section_counts`] and [`catalog::section_counts`]; no SQL lives here.

use super::wire::{self, SeatCounts, SeatMessage};
use crate::backoff::Backoff;
use crate::shutdown::Shutdown;
use crate::store::{DbError, catalog};
use dashmap::{DashMap, DashSet};
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use registrar_actors::{Counts, SectionId, Version};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest a Redis command may take before the caller gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);

/// How long reads skip Redis after a failed one (then one read probes it again).
pub const BREAKER_OPEN: Duration = Duration::from_secs(2);

/// Write a section's hash only over an older version, and publish what was written.
/// `KEYS[1]`: the hash. `ARGV`: epoch, seq, seats_taken, capacity, waitlist_length,
/// waitlist_capacity, the channel to publish on (empty: do not publish), the message,
/// reserved_seats_left.
/// Answers 1 if it wrote, 0 if the hash held the same or a newer version. (Stamps are
/// microseconds, well below 2^53, so Lua's numbers compare them exactly.)
pub const GUARDED_WRITE: &str = r#"
local held = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local held_epoch, held_seq = tonumber(held[1]), tonumber(held[2])
local epoch, seq = tonumber(ARGV[1]), tonumber(ARGV[2])
if held_epoch and held_seq and (held_epoch > epoch or (held_epoch == epoch and held_seq >= seq)) then
  return 0
end
redis.call('HSET', KEYS[1], 'seats_taken', ARGV[3], 'capacity', ARGV[4],
  'waitlist_length', ARGV[5], 'waitlist_capacity', ARGV[6], 'epoch', ARGV[1], 'seq', ARGV[2],
  'reserved_seats_left', ARGV[9])
if ARGV[7] ~= '' then
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
return 1
"#;

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
    /// The client's configuration, for the seat channel's subscriber connection.
    config: Config,
    prefix: String,
    /// The seat channel commits are published on.
    channel: String,
    /// The SHA of [`GUARDED_WRITE`] as Redis knows it; loaded again by every rebuild,
    /// since a Redis that restarted has forgotten it.
    script: Mutex<Option<String>>,
    /// Counts committed since the last write, latest per section (written and published).
    pending: DashMap<SectionId, SeatCounts>,
    /// Sections missing in Redis, to be read from PostgreSQL and written if still missing.
    heals: DashSet<SectionId>,
    wake: Notify,
    healthy: AtomicBool,
    breaker: Breaker,
    /// Hashes written since start.
    pub writes: AtomicU64,
    /// Writes refused since start because Redis held the same or newer counts.
    pub stale: AtomicU64,
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
        let client = Builder::from_config(config.clone())
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
            config,
            prefix: prefix.to_string(),
            channel: wire::channel(prefix),
            script: Mutex::new(None),
            pending: DashMap::new(),
            heals: DashSet::new(),
            wake: Notify::new(),
            healthy: AtomicBool::new(true),
            breaker: Breaker::new(),
            writes: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
        }))
    }

    fn key(&self, section: SectionId) -> String {
        format!("{}:section:{}", self.prefix, section)
    }

    /// The Redis configuration (the seat channel's subscriber opens its own connection).
    pub(crate) fn redis_config(&self) -> Config {
        self.config.clone()
    }

    /// The key prefix, which also names the seat channel.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the last write round succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Queue `seats` for `section`, to be written and published (the newest queued
    /// wins); never blocks.
    pub fn record(&self, section: SectionId, seats: SeatCounts) {
        let mut entry = self.pending.entry(section).or_insert(seats);
        if seats.version > entry.version {
            *entry = seats;
        }
        drop(entry);
        self.wake.notify_one();
    }

    /// Queue a heal of a section Redis lacks: the writer reads it from PostgreSQL and
    /// writes it unless Redis holds newer counts by then (see the module docs).
    pub fn heal(&self, section: SectionId) {
        self.heals.insert(section);
        self.wake.notify_one();
    }

    /// Sections queued for a heal and not yet written.
    pub fn heals_pending(&self) -> usize {
        self.heals.len()
    }

    /// The mirrored counts of `section`; `Ok(None)` when the key is missing,
    /// [`MirrorError::Bypassed`] at once while the breaker is open.
    pub async fn read(&self, section: SectionId) -> Result<Option<Counts>, MirrorError> {
        let seats = self.read_many(&[section]).await?;
        Ok(seats.first().map(|(_, s)| s.counts))
    }

    /// The mirrored counts of those of `sections` Redis holds, with their versions (a hash
    /// written before versions were kept reads as the oldest version); pipelined.
    /// [`MirrorError::Bypassed`] at once while the breaker is open.
    pub async fn read_many(
        &self,
        sections: &[SectionId],
    ) -> Result<Vec<(SectionId, SeatCounts)>, MirrorError> {
        if !self.breaker.allows() {
            self.bypassed.fetch_add(1, Ordering::Relaxed);
            return Err(MirrorError::Bypassed);
        }
        let mut found = Vec::new();
        for chunk in sections.chunks(500) {
            let pipeline = self.client.pipeline();
            for section in chunk {
                let _: () = pipeline.hgetall(self.key(*section)).await?;
            }
            let hashes: Vec<HashMap<String, i64>> = match pipeline.all().await {
                Ok(hashes) => hashes,
                Err(e) => {
                    self.breaker.trip();
                    return Err(e.into());
                }
            };
            self.hits.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            found.extend(
                chunk
                    .iter()
                    .zip(hashes)
                    .filter_map(|(section, fields)| Some((*section, seats_of(&fields)?))),
            );
        }
        Ok(found)
    }

    /// Write `batch` through [`GUARDED_WRITE`], publishing what is written if `publish`.
    async fn write(
        &self,
        batch: &[(SectionId, SeatCounts)],
        publish: bool,
    ) -> Result<(), MirrorError> {
        let script = self.script().await?;
        for chunk in batch.chunks(500) {
            let pipeline = self.client.pipeline();
            for (section, seats) in chunk {
                let (c, v) = (seats.counts, seats.version);
                let (channel, message) = if publish {
                    (
                        self.channel.as_str(),
                        SeatMessage::new(*section, *seats).encode(),
                    )
                } else {
                    ("", String::new())
                };
                let args: Vec<Value> = vec![
                    script.as_str().into(),
                    1.into(),
                    self.key(*section).into(),
                    v.epoch.into(),
                    // As text: a u64 may not fit Redis's signed integers.
                    v.seq.to_string().into(),
                    c.seats_taken.into(),
                    c.capacity.into(),
                    c.waitlist_length.into(),
                    c.waitlist_capacity.into(),
                    channel.into(),
                    message.into(),
                    c.reserved_seats_left.into(),
                ];
                // fred's pipelines have no `evalsha`; the command is sent as is.
                let evalsha = CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false);
                let _: () = pipeline.custom(evalsha, args).await?;
            }
            let written: Vec<i64> = pipeline.all().await?;
            let fresh = written.iter().filter(|w| **w == 1).count() as u64;
            self.writes.fetch_add(fresh, Ordering::Relaxed);
            self.stale
                .fetch_add(chunk.len() as u64 - fresh, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The SHA of [`GUARDED_WRITE`], loading the script into Redis if it never was.
    async fn script(&self) -> Result<String, MirrorError> {
        if let Some(sha) = self.script.lock().unwrap().clone() {
            return Ok(sha);
        }
        self.load_script().await
    }

    async fn load_script(&self) -> Result<String, MirrorError> {
        let load = CustomCommand::new_static("SCRIPT", ClusterHash::Random, false);
        let sha: String = self
            .client
            .custom(load, vec!["LOAD", GUARDED_WRITE])
            .await?;
        *self.script.lock().unwrap() = Some(sha.clone());
        Ok(sha)
    }

    /// Write every section's committed counts from PostgreSQL, except where Redis holds
    /// newer ones; how many sections were read. Loads the write script first (Redis may
    /// have restarted and forgotten it).
    pub async fn rebuild(&self, pool: &PgPool) -> Result<usize, MirrorError> {
        let batch = read_versioned(catalog::all_section_counts(pool).await?);
        self.load_script().await?;
        self.write(&batch, false).await?;
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
            let batch: Vec<(SectionId, SeatCounts)> = self
                .pending
                .iter()
                .map(|e| (*e.key(), *e.value()))
                .collect();
            if batch.is_empty() && !self.heals.is_empty() {
                self.write_heals(&pool).await;
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
            match self.write(&batch, true).await {
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

    /// Read the queued heals from PostgreSQL and write them through the guard; a failure
    /// drops them (the next read that misses heals again).
    async fn write_heals(&self, pool: &PgPool) {
        let sections: Vec<SectionId> = self.heals.iter().map(|s| *s).collect();
        for section in &sections {
            self.heals.remove(section);
        }
        let ids: Vec<uuid::Uuid> = sections.iter().map(|s| s.0).collect();
        let healed = match catalog::section_counts(pool, &ids).await {
            Ok(rows) => self.write(&read_versioned(rows), false).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = healed {
            if matches!(e, MirrorError::Redis(_)) {
                self.breaker.trip();
            }
            tracing::debug!(error = %e, "redis mirror heal failed");
        }
    }
}

/// Counts read from PostgreSQL, as the mirror holds them.
fn read_versioned(rows: Vec<(SectionId, Version, Counts)>) -> Vec<(SectionId, SeatCounts)> {
    rows.into_iter()
        .map(|(section, version, counts)| (section, SeatCounts { version, counts }))
        .collect()
}

/// A section's hash as read back; `None` unless every count is there.
fn seats_of(fields: &HashMap<String, i64>) -> Option<SeatCounts> {
    let count = |k: &str| fields.get(k).and_then(|v| u32::try_from(*v).ok());
    let counts = Counts {
        seats_taken: count("seats_taken")?,
        capacity: count("capacity")?,
        waitlist_length: count("waitlist_length")?,
        waitlist_capacity: count("waitlist_capacity")?,
        // Absent from hashes written before pools existed: none reserved.
        reserved_seats_left: count("reserved_seats_left").unwrap_or(0),
    };
    let version = match (fields.get("epoch"), fields.get("seq")) {
        (Some(epoch), Some(seq)) => Version {
            epoch: *epoch,
            seq: u64::try_from(*seq).unwrap_or(0),
        },
        _ => Version::default(),
    };
    Some(SeatCounts { version, counts })
}
