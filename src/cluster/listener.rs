//! The LISTEN side of the cluster's channel ([`CHANNEL`]): one connection, kept by the
//! membership's task, over which this node hears the [`Notice`]s other nodes send when the
//! map changes (`map`: read it again, and wake the coordinator) or when an admin changed a
//! student's rule inputs or a window elsewhere (forget them here).
//!
//! Notifications sent while the connection is down are lost, so whenever it is made again
//! the map is read afresh and every cached rule input is forgotten.

use super::map_cache::MapCache;
use super::rules::RuleCacheLink;
use crate::store::cluster::{CHANNEL, Notice};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use tokio::sync::Notify;

/// What the connection gave.
pub enum Heard {
    /// A notification's payload.
    Payload(String),
    /// The connection dropped.
    Dropped,
}

/// The listening connection and what it acts on (see module docs).
pub struct Listener {
    pool: PgPool,
    /// `None` until connected, and again once it dropped.
    conn: Option<PgListener>,
    map: Arc<MapCache>,
    rules: Arc<RuleCacheLink>,
    /// The shard count (every student's cached rules are forgotten after a gap).
    shards: u32,
    /// Wakes the coordinator early when the map changed.
    coordinator_wake: Arc<Notify>,
}

impl Listener {
    /// A listener, not connected yet.
    pub fn new(
        pool: PgPool,
        map: Arc<MapCache>,
        rules: Arc<RuleCacheLink>,
        shards: u32,
        coordinator_wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            conn: None,
            map,
            rules,
            shards,
            coordinator_wake,
        }
    }

    /// Connect and listen unless connected; after a gap, read the map again and forget
    /// the rule inputs whose notices may have been lost. Left unconnected if the database
    /// refuses (the next call tries again).
    pub async fn connect(&mut self) {
        if self.conn.is_some() {
            return;
        }
        let Ok(mut conn) = PgListener::connect_with(&self.pool).await else {
            return;
        };
        if conn.listen(CHANNEL).await.is_err() {
            return;
        }
        self.rules.forget_all(self.shards);
        let _ = self.map.refresh().await;
        self.conn = Some(conn);
    }

    /// The next thing the connection gives (never, while not connected).
    pub async fn receive(&mut self) -> Heard {
        let Some(conn) = self.conn.as_mut() else {
            return std::future::pending().await;
        };
        match conn.try_recv().await {
            Ok(Some(notification)) => Heard::Payload(notification.payload().to_string()),
            Ok(None) | Err(_) => Heard::Dropped,
        }
    }

    /// Act on what was heard: a notice, or a dropped connection (reconnected by the next
    /// [`Listener::connect`]; the map is read again meanwhile).
    pub async fn act(&mut self, heard: Heard) {
        let payload = match heard {
            Heard::Payload(payload) => payload,
            Heard::Dropped => {
                self.conn = None;
                let _ = self.map.refresh().await;
                return;
            }
        };
        match Notice::parse(&payload) {
            Some(Notice::Map) => {
                if let Err(e) = self.map.refresh().await {
                    tracing::warn!(error = %e, "map refresh failed");
                }
                self.coordinator_wake.notify_one();
            }
            Some(Notice::Windows) => self.rules.forget_windows(),
            Some(Notice::Student(student)) => self.rules.forget_student(student),
            Some(Notice::AllStudents) => self.rules.forget_all_students(),
            Some(Notice::Section(section)) => self.rules.forget_section(section),
            // From a newer version, say: nothing this one caches.
            None => {}
        }
    }
}
