//! This node's copy of the shard map: read from PostgreSQL (the one place the map lives)
//! at every heartbeat, at every `map` notice and whenever a caller finds it stale, and
//! published on a `watch` channel. What the new map says about this node is acted on as it
//! is swapped in: the actors of shards lost any way but a handoff are stopped at once
//! (their late commits fail on the epoch anyway), and the rule inputs of the students of
//! every shard gained or lost are forgotten, since another node serialized them meanwhile.

use super::map::ShardMap;
use super::rules::RuleCacheLink;
use super::shard_of;
use crate::store::DbError;
use crate::store::cluster as rows;
use registrar_actors::SectionRegistry;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Refreshes asked for within this long of the last one share it.
const REFRESH_COALESCE: Duration = Duration::from_millis(20);

/// The shard map as this node last read it (see module docs).
pub struct MapCache {
    /// This node's id: what "gained" and "lost" are judged against.
    node: Arc<str>,
    /// The shard count.
    shards: u32,
    pool: PgPool,
    map: watch::Sender<Arc<ShardMap>>,
    /// Told which students to forget when shards change hands.
    rules: Arc<RuleCacheLink>,
    /// The actors of lost shards are stopped here.
    registry: Arc<SectionRegistry>,
    /// When the map was last read (to coalesce the refreshes of retrying callers).
    refreshed_at: Mutex<Instant>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl MapCache {
    /// An empty, not loaded map of `node`, read through `pool`.
    pub fn new(
        node: Arc<str>,
        shards: u32,
        pool: PgPool,
        rules: Arc<RuleCacheLink>,
        registry: Arc<SectionRegistry>,
    ) -> Self {
        Self {
            node,
            shards,
            pool,
            map: watch::Sender::new(Arc::default()),
            rules,
            registry,
            refreshed_at: Mutex::new(Instant::now()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The map as last read.
    pub fn map(&self) -> Arc<ShardMap> {
        self.map.borrow().clone()
    }

    /// A receiver that sees every new map.
    pub fn watch(&self) -> watch::Receiver<Arc<ShardMap>> {
        self.map.subscribe()
    }

    /// Read the map again unless it was read in the last few milliseconds (callers
    /// retrying after a stale map share one read).
    pub async fn refresh_soon(&self) -> Result<(), DbError> {
        let asked = Instant::now();
        let _one = self.refreshing.lock().await;
        let recent = asked.checked_sub(REFRESH_COALESCE).unwrap_or(asked);
        if *self.refreshed_at.lock().expect("refresh lock") >= recent {
            return Ok(());
        }
        self.read().await
    }

    /// Read the map again and act on what changed for this node.
    pub async fn refresh(&self) -> Result<(), DbError> {
        let _one = self.refreshing.lock().await;
        self.read().await
    }

    async fn read(&self) -> Result<(), DbError> {
        *self.refreshed_at.lock().expect("refresh lock") = Instant::now();
        let (nodes, shards) = tokio::try_join!(rows::nodes(&self.pool), rows::shards(&self.pool))?;
        let new = Arc::new(ShardMap::from_rows(nodes, shards));
        let old = self.map.send_replace(new.clone());
        let changed = new.changed_for(&old, &self.node);
        if !changed.is_empty() && old.loaded {
            self.on_changed(&old, &new, &changed).await;
        }
        Ok(())
    }

    async fn on_changed(&self, old: &ShardMap, new: &ShardMap, changed: &[u32]) {
        let set: HashSet<u32> = changed.iter().copied().collect();
        let lost: HashSet<u32> = changed
            .iter()
            .copied()
            .filter(|s| {
                old.owner(*s).is_some_and(|o| *o == self.node) && new.owner(*s) != old.owner(*s)
            })
            .collect();
        self.rules.forget_shards(&set, self.shards);
        if !lost.is_empty() {
            tracing::info!(node = %self.node, shards = lost.len(), "shards left this node; stopping their actors");
            let total = self.shards;
            self.registry
                .stop_where(|section| lost.contains(&shard_of(section.0, total)))
                .await;
        }
    }
}
