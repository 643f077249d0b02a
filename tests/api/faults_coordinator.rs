//! The coordinator under faults: a PostgreSQL stall longer than the lease (every node's
//! traffic held in a proxy, the coordinator's released first), and a node paused with
//! SIGSTOP while one of its commits holds `FOR SHARE` on its `shard_owners` rows. Each
//! test judges by what PostgreSQL holds (`cluster_nodes`, `shard_owners`, `shard_moves`)
//! and first checks that the fault took effect.

use crate::cluster::{node_settings, owner_of, wait_balanced};
use crate::cluster_procs::{Proc, SHARDS};
use crate::held_proxy::HeldProxy;
use crate::helpers::*;
use crate::proxy::target_of;
use registrar::store::NodePools;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A pool of the test's own on `database`, straight to PostgreSQL.
async fn pool_of(database: &str) -> PgPool {
    PgPool::connect(&test_settings(database).database.database_url)
        .await
        .expect("connect to the test database")
}

/// Every member: (id, state, incarnation).
async fn members(pool: &PgPool) -> Vec<(String, String, Option<Uuid>)> {
    sqlx::query_as("SELECT id, state, incarnation FROM cluster_nodes ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The map: (shard, owner, epoch).
async fn map(pool: &PgPool) -> Vec<(i32, Option<String>, i64)> {
    sqlx::query_as("SELECT shard, node_id, epoch FROM shard_owners ORDER BY shard")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// How many moves were ever recorded.
async fn moves(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM shard_moves")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The youngest heartbeat of any member, in milliseconds, by the database clock.
async fn youngest_heartbeat_ms(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT (extract(epoch FROM now() - max(heartbeat_at)) * 1000)::bigint FROM cluster_nodes",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_database_stall_longer_than_the_lease_declares_nobody_dead() {
    let database = fresh_database().await;
    let direct = pool_of(&database).await;
    let target = target_of(&admin_url());
    // Each node reaches PostgreSQL only through a proxy of its own (every pool).
    let mut proxies = Vec::new();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let proxy = HeldProxy::start(target).await;
        let mut s = node_settings(&database, &format!("node-{i}"), SHARDS);
        let through = format!("127.0.0.1:{}", proxy.port);
        s.database.database_url = s
            .database
            .database_url
            .replace(&target.to_string(), &through);
        assert!(
            s.database.database_url.contains(&through),
            "{}",
            s.database.database_url
        );
        let pools: NodePools = registrar::store::connect_node(&s.database).await.unwrap();
        nodes.push(TestApp::start_with_pools(s, pools).await);
        proxies.push(proxy);
    }
    wait_balanced(&nodes[0], 3, SHARDS as i64).await;
    let coordinator: String =
        sqlx::query_scalar("SELECT node_id FROM cluster_coordinator WHERE id = 1")
            .fetch_one(&direct)
            .await
            .unwrap();
    assert_eq!(coordinator, "node-1", "the first node coordinates");
    // Quiet: no move under way, nothing more to balance.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (members_before, map_before, moves_before) = (
        members(&direct).await,
        map(&direct).await,
        moves(&direct).await,
    );
    assert!(
        members_before.iter().all(|m| m.1 == "active"),
        "{members_before:?}"
    );

    let lease = Duration::from_millis(nodes[0].settings.cluster.lease_ms);
    let stall = lease * 3;
    for p in &proxies {
        p.hold();
    }
    tokio::time::sleep(stall).await;
    let silent_ms = youngest_heartbeat_ms(&direct).await;
    // The stall ends for the coordinator first; the others get through a second later
    // (well inside a lease of the end of the stall).
    proxies[0].release();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    proxies[1].release();
    proxies[2].release();
    let released = Instant::now();
    eprintln!(
        "stall of {} ms (lease {} ms): no member renewed for {silent_ms} ms; the coordinator \
         released 1000 ms before the others",
        stall.as_millis(),
        lease.as_millis()
    );
    assert!(
        silent_ms > lease.as_millis() as i64,
        "the stall did not take effect: a heartbeat {silent_ms} ms old"
    );

    // Three leases for whatever the coordinator would do.
    tokio::time::sleep(lease * 3).await;
    let (members_after, map_after, moves_after) = (
        members(&direct).await,
        map(&direct).await,
        moves(&direct).await,
    );
    eprintln!(
        "{} ms after the release: members {members_after:?}; {} shards changed owner or \
         epoch; {} moves recorded",
        released.elapsed().as_millis(),
        map_before
            .iter()
            .zip(&map_after)
            .filter(|(b, a)| b != a)
            .count(),
        moves_after - moves_before
    );
    assert_eq!(
        members_after, members_before,
        "a member was declared dead (or rejoined)"
    );
    assert_eq!(map_after, map_before, "the map changed");
    assert_eq!(moves_after, moves_before, "shards moved");
    for n in nodes {
        n.stop().await;
    }
}

/// The pids of backends on `database` idle inside a transaction that holds a row lock
/// (`FOR SHARE`/`FOR UPDATE`: a `RowShareLock` on the table) on `shard_owners`.
async fn row_lock_holders(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
          WHERE a.datname = current_database() AND a.state = 'idle in transaction'
            AND l.relation = 'shard_owners'::regclass AND l.mode = 'RowShareLock'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Shards owned by `node`.
async fn owned_by(pool: &PgPool, node: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM shard_owners WHERE node_id = $1")
        .bind(node)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_node_paused_holding_for_share_loses_its_shards_within_a_lease_or_so() {
    let database = fresh_database().await;
    let mut s = node_settings(&database, "node-a", SHARDS);
    s.sections.call_timeout_ms = 2_000;
    let a = TestApp::start(s).await;
    let hold = ["env", "FAILPOINTS=commit-hold=return(node-b)"];
    let b = Proc::start_under(&database, "node-b", &hold).await;
    let mut c = Proc::start(&database, "node-c").await;
    wait_balanced(&a, 3, SHARDS as i64).await;
    let lease = Duration::from_millis(a.settings.cluster.lease_ms);
    let term = a.open_term().await;
    a.course("CS101", 3, &[]).await;
    let mut section = None;
    for i in 0..64 {
        let id = a
            .section(
                term,
                "CS101",
                &format!("S{i}"),
                20,
                0,
                serde_json::json!([]),
            )
            .await;
        if owner_of(&a, id).await == "node-b" {
            section = Some(id);
            break;
        }
    }
    let section = section.expect("a section on node-b");
    let (_, token) = a.student().await;
    // Its commit on node-b takes FOR SHARE on node-b's shard rows and then holds.
    let enroll = tokio::spawn({
        let (client, url) = (a.client.clone(), a.address.clone());
        async move {
            client
                .post(format!("{url}/api/v1/sections/{section}/enrollments"))
                .bearer_auth(token)
                .json(&serde_json::json!({}))
                .send()
                .await
        }
    });
    let mut holders = Vec::new();
    wait_until("node-b's commit holds FOR SHARE", async || {
        holders = row_lock_holders(&a.pool).await;
        !holders.is_empty()
    })
    .await;
    let (b_shards, c_shards) = (
        owned_by(&a.pool, "node-b").await,
        owned_by(&a.pool, "node-c").await,
    );
    assert!(b_shards > 0 && c_shards > 0);

    // node-b stops with its transaction open; node-c dies outright.
    let paused_at = Instant::now();
    b.signal("-STOP");
    c.signal("-KILL");
    let mut b_gone = None;
    let mut c_gone = None;
    wait_until("node-a owns every shard", async || {
        if b_gone.is_none() && owned_by(&a.pool, "node-b").await == 0 {
            b_gone = Some(paused_at.elapsed());
        }
        if c_gone.is_none() && owned_by(&a.pool, "node-c").await == 0 {
            c_gone = Some(paused_at.elapsed());
        }
        b_gone.is_some() && c_gone.is_some()
    })
    .await;
    let (b_gone, c_gone) = (b_gone.unwrap(), c_gone.unwrap());
    let still_held = row_lock_holders(&a.pool).await;
    eprintln!(
        "node-b paused holding FOR SHARE (backends {holders:?}), node-c killed: node-b's \
         {b_shards} shards reassigned after {} ms, node-c's {c_shards} after {} ms (lease \
         {} ms); row-lock holders now {still_held:?}",
        b_gone.as_millis(),
        c_gone.as_millis(),
        lease.as_millis()
    );
    assert_eq!(owned_by(&a.pool, "node-a").await, SHARDS as i64);
    let bound = lease + Duration::from_secs(3);
    assert!(
        b_gone < bound,
        "node-b's shards took {} ms",
        b_gone.as_millis()
    );
    assert!(
        c_gone < bound,
        "node-c's shards took {} ms",
        c_gone.as_millis()
    );

    b.signal("-CONT");
    let _ = c.child.wait().await;
    let _ = tokio::time::timeout(Duration::from_secs(20), enroll).await;
    b.stop().await;
    a.stop().await;
}
