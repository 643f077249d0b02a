//! The cluster's rows: membership and leases (`cluster_nodes`), the coordinator's lease,
//! the shard map with its epochs (`shard_owners`) and the record of moves (`shard_moves`),
//! with the typed states those rows hold and the notices of [`CHANNEL`]. Every change of
//! the map sends [`Notice::Map`] in its transaction, so the nodes reload it as soon as it
//! commits.
//!
//! Leases are judged by the database clock (`now()`), never by a node's: a node's lease
//! holds while `heartbeat_at` is younger than the lease time.

use super::DbResult;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The channel every node listens on for [`Notice`]s (`cluster::listener` acts on them).
pub const CHANNEL: &str = "registrar_cluster";

mod states;

pub use states::{MirrorHealth, MoveReason, MoveState, NodeState, Notice, ShardState};

/// One node as the map shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NodeRow {
    /// Stable id.
    pub id: String,
    /// Where peers reach it.
    pub address: String,
    /// Its state.
    pub state: NodeState,
    /// The current process of this id.
    pub incarnation: Option<Uuid>,
    /// Milliseconds since its last heartbeat, by the database clock.
    pub lease_age_ms: i64,
    /// Decisions per second it reported.
    pub decisions_per_s: f64,
    /// Commands in flight it reported.
    pub in_flight: i32,
    /// Its hottest sections, as it reported them.
    #[sqlx(json)]
    pub hot_sections: Vec<HotSection>,
    /// Decisions per second by shard, as it reported them.
    #[sqlx(json)]
    pub shard_load: BTreeMap<u32, f64>,
    /// Client requests answered per second, as it reported them.
    pub requests_per_s: f64,
    /// p99 latency (ms) of its registration requests, as it reported it.
    pub p99_ms: Option<f64>,
    /// 503 `overloaded` answers per second, as it reported them.
    pub overloaded_per_s: f64,
    /// Whether its outbox relay held a broker link.
    pub broker_connected: bool,
    /// Its Redis mirror.
    pub redis: MirrorHealth,
}

/// One shard's owner.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ShardRow {
    /// The shard.
    pub shard: i32,
    /// Its owner, if any.
    pub node_id: Option<String>,
    /// Bumped at every change of owner.
    pub epoch: i64,
    /// Its state.
    pub state: ShardState,
}

/// One recorded move, as the operator API shows it too.
#[derive(Clone, Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct MoveRow {
    /// Id.
    pub id: i64,
    /// The shard.
    pub shard: i32,
    /// From this node.
    #[serde(rename = "from")]
    pub from_node: String,
    /// To this node.
    #[serde(rename = "to")]
    pub to_node: String,
    /// Why.
    pub reason: MoveReason,
    /// Who asked (a node id or an operator's username).
    pub requested_by: String,
    /// Where it stands.
    pub state: MoveState,
    /// Why it failed.
    pub error: Option<String>,
    /// Requests held while the shard moved.
    pub held_requests: i32,
    /// When it was asked for.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it ended.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One of the sections a node reports as its busiest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HotSection {
    /// The section.
    pub section_id: Uuid,
    /// Its shard.
    pub shard: u32,
    /// The node that reported it (its owner then).
    pub node_id: String,
    /// Section commands admitted per second over the node's last heartbeat.
    pub decisions_per_s: f64,
    /// Commands queued or being decided at that heartbeat.
    pub in_flight: usize,
}

/// The load a node reports with its heartbeat (`cluster::load` builds it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Decisions per second over the last heartbeat.
    pub decisions_per_s: f64,
    /// Commands in flight now.
    pub in_flight: i32,
    /// Its hottest sections, busiest first.
    pub hot_sections: Vec<HotSection>,
    /// Decisions per second by shard (only shards with some).
    pub shard_load: BTreeMap<u32, f64>,
    /// Client requests answered per second over the last heartbeat.
    pub requests_per_s: f64,
    /// p99 latency (ms) of the registration requests of the last heartbeat, if any.
    pub p99_ms: Option<f64>,
    /// 503 `overloaded` answers per second over the last heartbeat.
    pub overloaded_per_s: f64,
    /// Whether the outbox relay holds a broker link.
    pub broker_connected: bool,
    /// The Redis mirror.
    pub redis: MirrorHealth,
}

/// Create the shard rows of a new cluster with `shards` shards; the cluster's shard count,
/// which differs from `shards` when the cluster was created with another (nothing is
/// written then).
pub async fn ensure_cluster(pool: &PgPool, shards: u32) -> DbResult<u32> {
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO cluster_settings (id, shards) VALUES (1, $1) ON CONFLICT DO NOTHING")
        .bind(shards as i32)
        .execute(&mut *tx)
        .await?;
    let fixed: i32 = sqlx::query_scalar("SELECT shards FROM cluster_settings WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    if fixed != shards as i32 {
        return Ok(fixed as u32);
    }
    sqlx::query(
        "INSERT INTO shard_owners (shard, node_id, epoch, state)
         SELECT g, NULL, 0, 'unowned' FROM generate_series(0, $1 - 1) AS g
         ON CONFLICT (shard) DO NOTHING",
    )
    .bind(shards as i32)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(shards)
}

/// Register a new incarnation of `node` as `joining`, unless the id's current incarnation
/// holds a live lease (`joining`, `active` or `draining`, renewed within `lease_ms` by the
/// database clock): another process runs under this id, and false is returned with nothing
/// written. Shards the id still owns (a restart after its lease ran out but before the
/// coordinator noticed) stay its own under bumped epochs, which fences the previous
/// process for good.
pub async fn register(
    pool: &PgPool,
    node: &str,
    incarnation: Uuid,
    address: &str,
    lease_ms: u64,
) -> DbResult<bool> {
    let mut tx = pool.begin().await?;
    // ON CONFLICT locks the existing row, so two processes registering at once see each
    // other: the second finds the first's live lease.
    let registered: Option<String> = sqlx::query_scalar(
        "INSERT INTO cluster_nodes (id, address, incarnation, state, started_at, heartbeat_at)
         VALUES ($1, $2, $3, 'joining', now(), now())
         ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address,
             incarnation = EXCLUDED.incarnation, state = 'joining', started_at = now(),
             heartbeat_at = now(), decisions_per_s = 0, in_flight = 0, hot_sections = '[]',
             requests_per_s = 0, p99_ms = NULL, overloaded_per_s = 0
          WHERE cluster_nodes.state NOT IN ('joining', 'active', 'draining')
             OR cluster_nodes.heartbeat_at
                < now() - make_interval(secs => $4::double precision / 1000)
         RETURNING id",
    )
    .bind(node)
    .bind(address)
    .bind(incarnation)
    .bind(lease_ms as f64)
    .fetch_optional(&mut *tx)
    .await?;
    if registered.is_none() {
        return Ok(false);
    }
    lock_owned_rows(&mut tx, node).await?;
    sqlx::query("UPDATE shard_owners SET epoch = epoch + 1, state = 'active' WHERE node_id = $1")
        .bind(node)
        .execute(&mut *tx)
        .await?;
    notify_map(&mut tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Lock the `shard_owners` rows `node` owns, in shard order. Every transaction that locks
/// several of these rows takes them in shard order (a commit's `FOR SHARE`, a handoff, a
/// move being recorded): taken in scan order, an update of a node's rows and a commit
/// could each hold a row the other waits for, and PostgreSQL would abort one of them as a
/// deadlock after a second.
async fn lock_owned_rows(tx: &mut Transaction<'_, Postgres>, node: &str) -> DbResult<()> {
    sqlx::query("SELECT shard FROM shard_owners WHERE node_id = $1 ORDER BY shard FOR UPDATE")
        .bind(node)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The current incarnation of `node`, and whether it holds a live lease (as in
/// [`register`]); `None` if the id never registered.
pub async fn holder(pool: &PgPool, node: &str, lease_ms: u64) -> DbResult<Option<(Uuid, bool)>> {
    let row: Option<(Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT incarnation,
                state IN ('joining', 'active', 'draining')
                AND heartbeat_at >= now() - make_interval(secs => $2::double precision / 1000)
           FROM cluster_nodes WHERE id = $1",
    )
    .bind(node)
    .bind(lease_ms as f64)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(incarnation, live)| Some((incarnation?, live))))
}

/// The database's clock now (`clock_timestamp()`, not the transaction's `now()`).
pub async fn database_time(pool: &PgPool) -> DbResult<chrono::DateTime<chrono::Utc>> {
    Ok(sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await?)
}

/// Renew `node`'s lease and report its load; its state (`left` once drained), or `None`
/// if this incarnation was declared dead or replaced: it must stop and rejoin.
pub async fn heartbeat(
    pool: &PgPool,
    node: &str,
    incarnation: Uuid,
    load: &LoadReport,
) -> DbResult<Option<NodeState>> {
    Ok(sqlx::query_scalar(
        "UPDATE cluster_nodes SET heartbeat_at = now(), decisions_per_s = $3, in_flight = $4,
                hot_sections = $5, shard_load = $6, requests_per_s = $7, p99_ms = $8,
                overloaded_per_s = $9, broker_connected = $10, redis = $11
          WHERE id = $1 AND incarnation = $2 AND state <> 'dead'
          RETURNING state",
    )
    .bind(node)
    .bind(incarnation)
    .bind(load.decisions_per_s)
    .bind(load.in_flight)
    .bind(Json(&load.hot_sections))
    .bind(Json(&load.shard_load))
    .bind(load.requests_per_s)
    .bind(load.p99_ms)
    .bind(load.overloaded_per_s)
    .bind(load.broker_connected)
    .bind(load.redis)
    .fetch_optional(pool)
    .await?)
}

/// Move this incarnation of `node` from one of `from` to `to`; false if it is not in one
/// of those states any more.
pub async fn set_state(
    pool: &PgPool,
    node: &str,
    incarnation: Uuid,
    from: &[NodeState],
    to: NodeState,
) -> DbResult<bool> {
    let mut tx = pool.begin().await?;
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let changed = sqlx::query(
        "UPDATE cluster_nodes SET state = $4, heartbeat_at = now()
          WHERE id = $1 AND incarnation = $2 AND state = ANY($3)",
    )
    .bind(node)
    .bind(incarnation)
    .bind(&from)
    .bind(to)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    notify_map(&mut tx).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Leave the cluster: give up every shard `node` still owns (epochs bumped, unowned, for
/// the coordinator to reassign at once) and mark the node `left`.
pub async fn leave(pool: &PgPool, node: &str, incarnation: Uuid) -> DbResult<u64> {
    let mut tx = pool.begin().await?;
    let current: Option<String> = sqlx::query_scalar(
        "SELECT state FROM cluster_nodes WHERE id = $1 AND incarnation = $2 FOR UPDATE",
    )
    .bind(node)
    .bind(incarnation)
    .fetch_optional(&mut *tx)
    .await?;
    if current.is_none() {
        return Ok(0);
    }
    lock_owned_rows(&mut tx, node).await?;
    let released = sqlx::query(
        "UPDATE shard_owners SET node_id = NULL, epoch = epoch + 1, state = 'unowned'
          WHERE node_id = $1",
    )
    .bind(node)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE cluster_nodes SET state = 'left' WHERE id = $1 AND incarnation = $2")
        .bind(node)
        .bind(incarnation)
        .execute(&mut *tx)
        .await?;
    // A departing coordinator gives its lease up, so the next one starts at once.
    sqlx::query(
        "UPDATE cluster_coordinator SET lease_until = '-infinity'
          WHERE id = 1 AND node_id = $1 AND incarnation = $2",
    )
    .bind(node)
    .bind(incarnation)
    .execute(&mut *tx)
    .await?;
    notify_map(&mut tx).await?;
    tx.commit().await?;
    Ok(released)
}

/// Start draining `node` (an operator's drain): the coordinator hands its shards to the
/// active members, then marks it `left`. False if it is not active.
pub async fn drain(pool: &PgPool, node: &str) -> DbResult<bool> {
    let mut tx = pool.begin().await?;
    let started = sqlx::query(
        "UPDATE cluster_nodes SET state = 'draining' WHERE id = $1 AND state = 'active'",
    )
    .bind(node)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    notify_map(&mut tx).await?;
    tx.commit().await?;
    Ok(started)
}

/// Mark `left` every draining member that owns no shard any more; their ids.
pub async fn finish_drains(tx: &mut Transaction<'_, Postgres>) -> DbResult<Vec<String>> {
    let left: Vec<String> = sqlx::query_scalar(
        "UPDATE cluster_nodes n SET state = 'left'
          WHERE n.state = 'draining'
            AND NOT EXISTS (SELECT 1 FROM shard_owners o WHERE o.node_id = n.id)
          RETURNING n.id",
    )
    .fetch_all(&mut **tx)
    .await?;
    if !left.is_empty() {
        notify_map(tx).await?;
    }
    Ok(left)
}

/// Every node, with its lease age by the database clock.
pub async fn nodes<'e>(db: impl sqlx::PgExecutor<'e>) -> DbResult<Vec<NodeRow>> {
    Ok(sqlx::query_as(
        "SELECT id, address, state, incarnation,
                (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint AS lease_age_ms,
                decisions_per_s, in_flight, hot_sections, shard_load, requests_per_s, p99_ms,
                overloaded_per_s, broker_connected, redis
           FROM cluster_nodes ORDER BY id",
    )
    .fetch_all(db)
    .await?)
}

/// The whole shard map, in shard order.
pub async fn shards<'e>(db: impl sqlx::PgExecutor<'e>) -> DbResult<Vec<ShardRow>> {
    Ok(
        sqlx::query_as("SELECT shard, node_id, epoch, state FROM shard_owners ORDER BY shard")
            .fetch_all(db)
            .await?,
    )
}

/// Take or renew the coordinator's lease for `lease_ms`; true if this incarnation holds it.
pub async fn lead(pool: &PgPool, node: &str, incarnation: Uuid, lease_ms: u64) -> DbResult<bool> {
    let held: Option<i16> = sqlx::query_scalar(
        "UPDATE cluster_coordinator
            SET node_id = $1, incarnation = $2,
                lease_until = now() + make_interval(secs => $3::double precision / 1000)
          WHERE id = 1 AND (lease_until < now() OR (node_id = $1 AND incarnation = $2))
          RETURNING id",
    )
    .bind(node)
    .bind(incarnation)
    .bind(lease_ms as f64)
    .fetch_optional(pool)
    .await?;
    Ok(held.is_some())
}

/// The node holding the coordinator's lease now, if any.
pub async fn coordinator(pool: &PgPool) -> DbResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT node_id FROM cluster_coordinator WHERE id = 1 AND lease_until > now()",
    )
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// A coordinator's transaction: begun only while this incarnation holds the lease, which
/// stays locked (so no other node can take it) until the transaction ends.
pub async fn begin_as_coordinator<'a>(
    pool: &'a PgPool,
    node: &str,
    incarnation: Uuid,
) -> DbResult<Option<Transaction<'a, Postgres>>> {
    let mut tx = pool.begin().await?;
    let held: Option<i16> = sqlx::query_scalar(
        "SELECT id FROM cluster_coordinator
          WHERE id = 1 AND node_id = $1 AND incarnation = $2 AND lease_until > now()
          FOR UPDATE",
    )
    .bind(node)
    .bind(incarnation)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(held.map(|_| tx))
}

/// Bound a coordinator's transaction: a row lock not granted within `lock_ms` fails the
/// statement, and no statement runs longer than `statement_ms`, so the transaction never
/// holds the coordinator's row (and with it the lease) for long. The statements below
/// skip the rows they cannot lock instead of waiting for them.
pub async fn bound_transaction(
    tx: &mut Transaction<'_, Postgres>,
    lock_ms: u64,
    statement_ms: u64,
) -> DbResult<()> {
    // SET LOCAL takes no parameters; set_config(.., true) is the same.
    sqlx::query(
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
    )
    .bind(format!("{lock_ms}ms"))
    .bind(format!("{statement_ms}ms"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// End the database sessions of members that are dead (and, with `expired_too`, of those
/// whose lease ran out, about to be declared dead) that sit idle inside a transaction
/// holding locks on the cluster's tables: a node paused in the middle of a commit (its
/// `FOR SHARE` on its `shard_owners` rows) or of a handoff. PostgreSQL would keep those
/// locks until its idle-transaction timeout, and the reassignment of the node's shards
/// would wait for them. Sessions are told apart by their `application_name`
/// (`store::application_name`); each is waited for at most `wait_ms`. The pids ended.
pub async fn end_lock_holders_of_the_dead(
    tx: &mut Transaction<'_, Postgres>,
    lease_ms: u64,
    me: &str,
    expired_too: bool,
    wait_ms: u64,
) -> DbResult<Vec<i32>> {
    let holders: Vec<i32> = sqlx::query_scalar(
        "SELECT a.pid FROM pg_stat_activity a
           JOIN cluster_nodes n ON a.application_name = $4 || n.id
          WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND n.id <> $2
            AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
            AND (n.state = 'dead'
                 OR $3 AND n.state IN ('joining', 'active', 'draining')
                    AND n.heartbeat_at < now() - make_interval(secs => $1::double precision / 1000))
            AND EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.pid = a.pid AND l.granted
                    AND l.relation IN ('shard_owners'::regclass, 'cluster_nodes'::regclass,
                                       'shard_moves'::regclass))",
    )
    .bind(lease_ms as f64)
    .bind(me)
    .bind(expired_too)
    .bind(super::application_name(""))
    .fetch_all(&mut **tx)
    .await?;
    if holders.is_empty() {
        return Ok(holders);
    }
    // Apart from the query that picks them: a function in a WHERE clause may be
    // evaluated before the other conditions.
    Ok(sqlx::query_scalar(
        "SELECT pid FROM unnest($1::int[]) AS pid WHERE pg_terminate_backend(pid, $2)",
    )
    .bind(&holders)
    .bind(wait_ms as i64)
    .fetch_all(&mut **tx)
    .await?)
}

/// Declare dead every member whose lease ran out, except the coordinator `me` (it is
/// evidently running; its own heartbeat follows); their ids. A member whose row another
/// transaction holds locked is left for the next step.
pub async fn expire_dead(
    tx: &mut Transaction<'_, Postgres>,
    lease_ms: u64,
    me: &str,
) -> DbResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE cluster_nodes SET state = 'dead'
          WHERE id IN (SELECT id FROM cluster_nodes
                        WHERE state IN ('joining', 'active', 'draining') AND id <> $2
                          AND heartbeat_at
                              < now() - make_interval(secs => $1::double precision / 1000)
                          FOR UPDATE SKIP LOCKED)
          RETURNING id",
    )
    .bind(lease_ms as f64)
    .bind(me)
    .fetch_all(&mut **tx)
    .await?)
}

/// Give orphaned shards (no owner, or an owner that is dead or left) to new owners, each
/// epoch bumped; shards that are no longer orphans are left alone, and so are those whose
/// row another transaction holds locked (the next step takes them), so that one node's
/// locked rows never hold up the others'. The shards assigned.
pub async fn assign_orphans(
    tx: &mut Transaction<'_, Postgres>,
    assignments: &[(u32, String)],
) -> DbResult<u64> {
    if assignments.is_empty() {
        return Ok(0);
    }
    let shards: Vec<i32> = assignments.iter().map(|(s, _)| *s as i32).collect();
    let owners: Vec<&str> = assignments.iter().map(|(_, n)| n.as_str()).collect();
    let assigned = sqlx::query(
        "WITH free AS (
             SELECT shard FROM shard_owners WHERE shard = ANY($1) FOR UPDATE SKIP LOCKED
         )
         UPDATE shard_owners o SET node_id = t.node, epoch = o.epoch + 1, state = 'active'
           FROM unnest($1::int[], $2::text[]) AS t(shard, node)
          WHERE o.shard = t.shard AND o.shard IN (SELECT shard FROM free)
            AND (o.node_id IS NULL OR EXISTS (SELECT 1 FROM cluster_nodes n
                  WHERE n.id = o.node_id AND n.state IN ('dead', 'left')))
            AND EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.id = t.node AND n.state = 'active')",
    )
    .bind(&shards)
    .bind(&owners)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    notify_map(tx).await?;
    Ok(assigned)
}

/// Fail the open moves whose source or target is no longer a live member (the coordinator
/// cleans up after a crash in the middle of a move: ownership never changed half-way, so
/// the move simply did not happen, or the orphan reassignment finished it).
pub async fn fail_stranded_moves(tx: &mut Transaction<'_, Postgres>) -> DbResult<u64> {
    Ok(sqlx::query(
        "UPDATE shard_moves m SET state = 'failed', finished_at = now(),
                error = 'a node of the move left the cluster'
          WHERE (m.state IN ('pending', 'running')
                 AND NOT EXISTS (SELECT 1 FROM cluster_nodes n
                       WHERE n.id = m.from_node AND n.state IN ('active', 'draining'))
              OR m.state IN ('pending', 'running')
                 AND NOT EXISTS (SELECT 1 FROM cluster_nodes n
                       WHERE n.id = m.to_node AND n.state = 'active'))
            -- A move row locked by a handoff in progress is swept at a later step.
            AND m.id IN (SELECT id FROM shard_moves WHERE state IN ('pending', 'running')
                          FOR UPDATE SKIP LOCKED)",
    )
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Record planned moves as `running`, each only if its source still owns the shard;
/// the (shard, move id) of those recorded. A shard that already has an open move is
/// `Err(Duplicate)` and nothing is recorded.
pub async fn start_moves(
    pool: &PgPool,
    moves: &[(u32, String, String)],
    reason: MoveReason,
    requested_by: &str,
) -> DbResult<Vec<(u32, i64)>> {
    let shards: Vec<i32> = moves.iter().map(|m| m.0 as i32).collect();
    let from: Vec<&str> = moves.iter().map(|m| m.1.as_str()).collect();
    let to: Vec<&str> = moves.iter().map(|m| m.2.as_str()).collect();
    // The owner rows are locked, so a handoff committing meanwhile is waited for and its
    // new owner seen (the join is re-checked on the row's latest version).
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "WITH planned AS (
             SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS t(shard, from_node, to_node)
         ), owned AS (
             SELECT o.shard FROM shard_owners o JOIN planned p ON p.shard = o.shard
              WHERE o.node_id = p.from_node
              ORDER BY o.shard
              FOR UPDATE OF o
         )
         INSERT INTO shard_moves (shard, from_node, to_node, reason, requested_by, state)
         SELECT p.shard, p.from_node, p.to_node, $4, $5, 'running'
           FROM planned p JOIN owned USING (shard)
         RETURNING shard, id",
    )
    .bind(&shards)
    .bind(&from)
    .bind(&to)
    .bind(reason)
    .bind(requested_by)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(s, id)| (s as u32, id)).collect())
}

/// End moves as failed with `error` (nothing changed hands).
pub async fn fail_moves(pool: &PgPool, ids: &[i64], error: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE shard_moves SET state = 'failed', error = $2, finished_at = now()
          WHERE id = ANY($1) AND state IN ('pending', 'running')",
    )
    .bind(ids)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// The handoff's one transaction, run by the old owner once its shards are quiet: each of
/// `shards` still owned by this incarnation of `from` goes to `to` (epoch bumped) if `to`
/// is an active member with a live lease and its move is still open; the open moves are
/// recorded done or failed with it (an ended move is left as it ended). The shards that
/// changed hands.
pub async fn hand_over(
    pool: &PgPool,
    from: &str,
    incarnation: Uuid,
    to: &str,
    lease_ms: u64,
    moves: &[(u32, i64, i32)],
) -> DbResult<Vec<u32>> {
    let mut tx = pool.begin().await?;
    let source: Option<String> = sqlx::query_scalar(
        "SELECT state FROM cluster_nodes WHERE id = $1 AND incarnation = $2
            AND state IN ('active', 'draining') FOR SHARE",
    )
    .bind(from)
    .bind(incarnation)
    .fetch_optional(&mut *tx)
    .await?;
    let target: Option<String> = sqlx::query_scalar(
        "SELECT state FROM cluster_nodes WHERE id = $1 AND state = 'active'
            AND heartbeat_at >= now() - make_interval(secs => $2::double precision / 1000)
            FOR SHARE",
    )
    .bind(to)
    .bind(lease_ms as f64)
    .fetch_optional(&mut *tx)
    .await?;
    let shards: Vec<i32> = moves.iter().map(|m| m.0 as i32).collect();
    let ids: Vec<i64> = moves.iter().map(|m| m.1).collect();
    let held: Vec<i32> = moves.iter().map(|m| m.2).collect();
    // A move ends once: one failed meanwhile (the coordinator gave up on it, or swept it
    // as stranded) stays failed, and its shard stays put, as its record says. Locked in
    // the coordinator's order (members, owners, moves), so neither can deadlock the other.
    sqlx::query("SELECT shard FROM shard_owners WHERE shard = ANY($1) ORDER BY shard FOR UPDATE")
        .bind(&shards)
        .execute(&mut *tx)
        .await?;
    let open: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM shard_moves WHERE id = ANY($1) AND state IN ('pending', 'running')
          ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let movable: Vec<i32> = moves
        .iter()
        .filter(|m| open.contains(&m.1))
        .map(|m| m.0 as i32)
        .collect();
    let moved: Vec<i32> = if source.is_some() && target.is_some() && !movable.is_empty() {
        sqlx::query_scalar(
            "UPDATE shard_owners SET node_id = $2, epoch = epoch + 1, state = 'active'
              WHERE shard = ANY($1) AND node_id = $3 RETURNING shard",
        )
        .bind(&movable)
        .bind(to)
        .bind(from)
        .fetch_all(&mut *tx)
        .await?
    } else {
        Vec::new()
    };
    sqlx::query(
        "UPDATE shard_moves m SET finished_at = now(), held_requests = t.held,
                state = CASE WHEN t.shard = ANY($4) THEN 'done' ELSE 'failed' END,
                error = CASE WHEN t.shard = ANY($4) THEN NULL
                             ELSE 'the target is not an active member, or the source lost the shard' END
           FROM unnest($1::bigint[], $2::int[], $3::int[]) AS t(id, shard, held)
          WHERE m.id = t.id AND m.state IN ('pending', 'running')",
    )
    .bind(&ids)
    .bind(&shards)
    .bind(&held)
    .bind(&moved)
    .execute(&mut *tx)
    .await?;
    notify_map(&mut tx).await?;
    tx.commit().await?;
    Ok(moved.into_iter().map(|s| s as u32).collect())
}

/// Moves still open, and the last `recent` finished ones, newest first.
pub async fn moves(pool: &PgPool, open_only: bool, recent: i64) -> DbResult<Vec<MoveRow>> {
    Ok(sqlx::query_as(
        "SELECT id, shard, from_node, to_node, reason, requested_by, state, error, held_requests,
                started_at, finished_at
           FROM shard_moves
          WHERE state IN ('pending', 'running') OR NOT $1
          ORDER BY id DESC LIMIT $2",
    )
    .bind(open_only)
    .bind(recent)
    .fetch_all(pool)
    .await?)
}

/// Tell every node to reload the map once `tx` commits.
async fn notify_map(tx: &mut Transaction<'_, Postgres>) -> DbResult<()> {
    notify(&mut **tx, Notice::Map).await
}

/// Tell every node that rule inputs changed ([`Notice::Student`] or [`Notice::Windows`]),
/// once `tx` commits; outside a transaction, at once.
pub async fn notify_rules<'e>(executor: impl sqlx::PgExecutor<'e>, what: Notice) -> DbResult<()> {
    notify(executor, what).await
}

/// [`notify_rules`] for many notices in one statement (an import's changed students and
/// sections); PostgreSQL folds repeats of one payload in a transaction into one.
pub async fn notify_rules_many<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    notices: &[Notice],
) -> DbResult<()> {
    if notices.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = notices.iter().map(Notice::encode).collect();
    sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(CHANNEL)
        .bind(payloads)
        .execute(executor)
        .await?;
    Ok(())
}

/// Send `notice` on [`CHANNEL`].
async fn notify<'e>(executor: impl sqlx::PgExecutor<'e>, notice: Notice) -> DbResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(notice.encode())
        .execute(executor)
        .await?;
    Ok(())
}

/// Shards an operator moved in the last `minutes` (automatic rebalancing leaves them
/// where the operator put them).
pub async fn placed_by_operators(pool: &PgPool, minutes: i32) -> DbResult<Vec<i32>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT shard FROM shard_moves
          WHERE reason = 'operator' AND started_at > now() - make_interval(mins => $1)",
    )
    .bind(minutes)
    .fetch_all(pool)
    .await?)
}

/// One move by id.
pub async fn move_by_id(pool: &PgPool, id: i64) -> DbResult<Option<MoveRow>> {
    Ok(sqlx::query_as(
        "SELECT id, shard, from_node, to_node, reason, requested_by, state, error, held_requests,
                started_at, finished_at
           FROM shard_moves WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_load_is_stored_as_an_object_keyed_by_shard() {
        let load: BTreeMap<u32, f64> = [(2, 1.5), (10, 0.5)].into();
        let json = serde_json::to_value(&load).unwrap();
        assert_eq!(json, serde_json::json!({"2": 1.5, "10": 0.5}));
        assert_eq!(
            serde_json::from_value::<BTreeMap<u32, f64>>(json).unwrap(),
            load
        );
    }
}
