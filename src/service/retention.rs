//! The pruner: a background task on every node that deletes, every
//! `prune_interval_ms`, the rows past their retention (published outbox rows, audit rows,
//! stored idempotency answers; settings in [`RetentionSettings`]), a batch per statement
//! until a statement finds fewer than a batch. Every node runs one; they never conflict
//! (see [`crate::store::retention`]). It stops at shutdown between two statements.

use crate::backoff::Backoff;
use crate::config::RetentionSettings;
use crate::shutdown::Shutdown;
use crate::store::DbResult;
use crate::store::retention::{self, PrunedTable};
use chrono::{TimeDelta, Utc};
use sqlx::PgPool;
use std::time::Duration;

/// How long `table`'s rows are kept, in hours (0: forever).
fn retention_hours(table: PrunedTable, s: &RetentionSettings) -> u64 {
    match table {
        PrunedTable::Outbox => s.outbox_retention_hours,
        PrunedTable::Attempts | PrunedTable::Decisions => s.attempts_retention_hours,
        PrunedTable::IdempotencyKeys => s.idempotency_retention_hours,
    }
}

/// The pruner (see module docs).
#[derive(Clone)]
pub struct Pruner {
    pool: PgPool,
    settings: RetentionSettings,
}

impl Pruner {
    /// A pruner of `pool`'s tables with `settings`.
    pub fn new(pool: PgPool, settings: RetentionSettings) -> Self {
        Self { pool, settings }
    }

    /// Prune every interval until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        let interval = Duration::from_millis(self.settings.prune_interval_ms.max(1));
        let mut backoff = Backoff::new(interval, interval.max(Duration::from_secs(300)));
        loop {
            let delay = match self.round(&shutdown).await {
                Ok(()) => {
                    backoff.reset();
                    interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning failed; retrying later");
                    backoff.next_delay()
                }
            };
            if shutdown.sleep(delay).await {
                return;
            }
        }
    }

    /// One round over every table; stops early on shutdown.
    async fn round(&self, shutdown: &Shutdown) -> DbResult<()> {
        let batch = i64::from(self.settings.prune_batch.max(1));
        for table in PrunedTable::ALL {
            let hours = retention_hours(table, &self.settings);
            if hours == 0 {
                continue;
            }
            // A retention reaching before the epoch prunes nothing.
            let Some(cutoff) = i64::try_from(hours)
                .ok()
                .and_then(TimeDelta::try_hours)
                .and_then(|d| Utc::now().checked_sub_signed(d))
            else {
                continue;
            };
            let mut deleted = 0;
            loop {
                if shutdown.is_shutdown() {
                    return Ok(());
                }
                let n = retention::prune(&self.pool, table, cutoff, batch).await?;
                deleted += n;
                if n < batch as u64 {
                    break;
                }
            }
            if deleted > 0 {
                tracing::info!(
                    table = table.name(),
                    deleted,
                    retention_hours = hours,
                    "pruned rows past their retention"
                );
            }
        }
        Ok(())
    }
}
