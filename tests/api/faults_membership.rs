//! Membership and time under faults: a second process started under a live node's id, a
//! restart right after `kill -9`, a node whose clock runs ahead of the database's (under
//! Debian's `faketime`), a node that cannot renew its lease (a TCP proxy cut between it
//! and PostgreSQL), and a NOTIFY lost while the LISTEN connection was down. Each test
//! judges by what PostgreSQL holds and what the processes answer.

use crate::cluster_procs::{Proc, SHARDS};
use crate::helpers::*;
use crate::proxy::{Proxy, target_of};
use chrono::{DateTime, TimeDelta, Utc};
use registrar::resources::Role;
use registrar::service::auth::TokenKeys;
use registrar::store::NodePools;
use reqwest::{Client, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The lease of the process nodes (`cluster::node_settings`).
const PROC_LEASE: Duration = Duration::from_millis(2_000);

/// A pool of the test's own on `database` (the nodes' pools come and go).
async fn pool_of(database: &str) -> PgPool {
    PgPool::connect(&test_settings(database).database.database_url)
        .await
        .expect("connect to the test database")
}

/// `node`'s current incarnation.
async fn incarnation(pool: &PgPool, node: &str) -> Uuid {
    sqlx::query_scalar::<_, Option<Uuid>>("SELECT incarnation FROM cluster_nodes WHERE id = $1")
        .bind(node)
        .fetch_one(pool)
        .await
        .unwrap()
        .expect("an incarnation")
}

/// The `/metrics` text of the node at `base`.
async fn metrics_of(client: &Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The status of `/readyz` at `base`.
async fn readiness(client: &Client, base: &str) -> StatusCode {
    client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_second_process_under_a_live_node_id_is_refused_and_the_first_keeps_serving() {
    let database = fresh_database().await;
    let a = Proc::start(&database, "node-a").await;
    let pool = pool_of(&database).await;
    let client = Client::new();
    let before = incarnation(&pool, "node-a").await;

    let started = Instant::now();
    let (mut second, log) = Proc::spawn(&database, "node-a", &[]);
    let exited = tokio::time::timeout(Duration::from_secs(20), second.wait()).await;
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let status = match exited {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let now = incarnation(&pool, "node-a").await;
            let metrics = metrics_of(&client, &a.url).await;
            let rejoins: Vec<&str> = metrics.lines().filter(|l| l.contains("rejoins")).collect();
            panic!(
                "a second process under node-a still runs after 20 s; node-a's incarnation \
                 went from {before} to {now}; the first process says {rejoins:?}; the \
                 second's log:\n{output}"
            );
        }
    };
    eprintln!(
        "second process exited with {status} after {} ms: {}",
        started.elapsed().as_millis(),
        output.trim()
    );
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("node-a") && output.contains("another process"),
        "{output}"
    );

    // The first process never noticed: same incarnation, no rejoin, still serving.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(incarnation(&pool, "node-a").await, before);
    let metrics = metrics_of(&client, &a.url).await;
    assert!(
        metrics.contains("registrar_cluster_rejoins_total 0"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("rejoins"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(readiness(&client, &a.url).await, StatusCode::OK);
    let owned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM shard_owners WHERE node_id = 'node-a'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owned, SHARDS as i64);
    a.stop().await;
}

#[tokio::test]
async fn a_restart_right_after_kill_9_joins_once_the_lease_lapses() {
    let database = fresh_database().await;
    let mut a = Proc::start(&database, "node-a").await;
    let pool = pool_of(&database).await;
    let client = Client::new();
    let before = incarnation(&pool, "node-a").await;
    a.signal("-KILL");
    a.child.wait().await.unwrap();
    let last_beat: DateTime<Utc> =
        sqlx::query_scalar("SELECT heartbeat_at FROM cluster_nodes WHERE id = 'node-a'")
            .fetch_one(&pool)
            .await
            .unwrap();

    // At once, under the same id: it waits for the dead process's lease, then joins.
    let b = Proc::start(&database, "node-a").await;
    let (now, started_at, state): (Uuid, DateTime<Utc>, String) = sqlx::query_as(
        "SELECT incarnation, started_at, state FROM cluster_nodes WHERE id = 'node-a'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let gap = started_at - last_beat;
    eprintln!(
        "restart after kill -9: registered {} ms after the last heartbeat (lease {} ms)",
        gap.num_milliseconds(),
        PROC_LEASE.as_millis()
    );
    assert_ne!(now, before);
    assert_eq!(state, "active");
    assert!(
        gap >= TimeDelta::from_std(PROC_LEASE).unwrap(),
        "registered {} ms after the dead process's last heartbeat, inside its lease",
        gap.num_milliseconds()
    );
    wait_until("the restarted node is ready", async || {
        readiness(&client, &b.url).await == StatusCode::OK
    })
    .await;
    b.stop().await;
}

#[tokio::test]
async fn a_node_whose_clock_runs_ahead_judges_the_window_by_the_database_clock() {
    let database = fresh_database().await;
    let a = TestApp::start(crate::cluster::node_settings(&database, "node-a", SHARDS)).await;
    let pool = pool_of(&database).await;
    let term = a.open_term().await;
    a.course("CS101", 3, &[]).await;
    let section = a.section(term, "CS101", "01", 10, 0, json!([])).await;
    let (student, _) = a.student().await;
    // Opens in an hour by the database's clock.
    sqlx::query(
        "UPDATE registration_windows
            SET opens_at = now() + interval '1 hour', closes_at = now() + interval '5 hours'
          WHERE term_id = $1",
    )
    .bind(term)
    .execute(&pool)
    .await
    .unwrap();
    a.stop().await;

    // The only node now, its clock two hours ahead.
    // libfaketime preloaded into the node itself (what Debian's `faketime` does, but that
    // wrapper forks: killing it would orphan the node).
    let skewed = Proc::start_under(
        &database,
        "node-skew",
        &[
            "env",
            "LD_PRELOAD=/usr/$LIB/faketime/libfaketime.so.1",
            "FAKETIME=+2h",
        ],
    )
    .await;
    let client = Client::new();
    wait_until("the skewed node owns every shard", async || {
        let owned: i64 =
            sqlx::query_scalar("SELECT count(*) FROM shard_owners WHERE node_id = 'node-skew'")
                .fetch_one(&pool)
                .await
                .unwrap();
        owned == SHARDS as i64
    })
    .await;
    let r = client
        .get(format!("{}/readyz", skewed.url))
        .send()
        .await
        .unwrap();
    let date = r.headers()["date"].to_str().unwrap().to_string();
    let its_clock = DateTime::parse_from_rfc2822(&date).unwrap().to_utc();
    let ahead = its_clock - Utc::now();
    eprintln!(
        "the skewed node's Date: {date} ({} s ahead)",
        ahead.num_seconds()
    );
    assert!(
        ahead > TimeDelta::minutes(110),
        "faketime did not take effect: the node's clock is {} s ahead",
        ahead.num_seconds()
    );

    // A token of the usual hour, issued by the true clock: expired by the skewed node's
    // own clock, valid by the database's.
    let token = TokenKeys::new(SECRET.as_bytes(), 3600)
        .issue(student, Role::Student)
        .0;
    let r = client
        .post(format!(
            "{}/api/v1/sections/{section}/enrollments",
            skewed.url
        ))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM enrollments WHERE student_id = $1 AND status <> 'dropped'",
    )
    .bind(student)
    .fetch_one(&pool)
    .await
    .unwrap();
    eprintln!("enroll through the skewed node: {status} {body}; recorded: {recorded}");
    assert_problem(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "registration_window_closed",
    );
    assert_eq!(recorded, 0, "an enrollment before the window opened");
    skewed.stop().await;
}

#[tokio::test]
async fn a_node_that_cannot_renew_its_lease_stops_serving_as_home_until_it_can() {
    let proxy = Proxy::start(target_of(&admin_url())).await;
    let database = fresh_database().await;
    let mut s = test_settings(&database);
    s.cluster.heartbeat_ms = 100;
    s.cluster.lease_ms = 600;
    s.database.acquire_timeout_ms = 300;
    s.mirror.mirror_enabled = false;
    // The membership (and every read) goes through the proxy; the committer does not, so
    // decisions could still commit while the lease cannot be renewed.
    let direct = s.database.clone();
    let mut through = direct.clone();
    through.database_url = proxy.url_for(&direct.database_url);
    let reads = registrar::store::connect_node(&through)
        .await
        .unwrap()
        .reads;
    let commits = registrar::store::connect_node(&direct)
        .await
        .unwrap()
        .commits;
    let app = TestApp::start_with_pools(s, NodePools { reads, commits }).await;
    let pool = pool_of(&database).await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("CS102", 3, &[]).await;
    let x = app.section(term, "CS101", "01", 10, 0, json!([])).await;
    let y = app.section(term, "CS102", "01", 10, 0, json!([])).await;
    let students = app.students(2, &[]).await;
    let (student, token) = &students[0];
    // Warm every cache the next enroll needs (the window, the student, the sections).
    assert_eq!(app.enroll(&students[1].1, y).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(token, x).await.0, StatusCode::CREATED);

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = app
        .post(
            &format!("/api/v1/sections/{y}/enrollments"),
            Some(token),
            json!({}),
        )
        .await;
    let retry_after = r.headers().get("retry-after").cloned();
    let (status, body) = answer(r).await;
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM enrollments WHERE student_id = $1 AND section_id = $2",
    )
    .bind(student)
    .bind(y)
    .fetch_one(&pool)
    .await
    .unwrap();
    eprintln!(
        "enroll 900 ms into the cut (lease 600 ms): {status} {body}, retry-after \
         {retry_after:?}; recorded: {recorded}"
    );
    assert_problem(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert!(retry_after.is_some());
    assert_eq!(recorded, 0, "decided without a lease");

    proxy.restore();
    wait_until("the node serves again", async || {
        app.enroll(token, y).await.0 == StatusCode::CREATED
    })
    .await;
    let status: String = sqlx::query_scalar(
        "SELECT status FROM enrollments WHERE student_id = $1 AND section_id = $2",
    )
    .bind(student)
    .bind(y)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "enrolled");
    app.stop().await;
}

#[tokio::test]
async fn a_listener_reconnect_forgets_the_cached_windows() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("CS102", 3, &[]).await;
    let x = app.section(term, "CS101", "01", 10, 0, json!([])).await;
    let y = app.section(term, "CS102", "01", 10, 0, json!([])).await;
    let (student, token) = app.student().await;
    let listener = async || -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap()
    };
    let first = listener().await;
    assert_eq!(first.len(), 1, "one LISTEN connection: {first:?}");
    // The window is cached now (for a while).
    assert_eq!(app.enroll(&token, x).await.0, StatusCode::CREATED);
    let cached_at = Instant::now();

    // The window closes while the LISTEN connection is down: its NOTIFY is lost (here it
    // is never sent, which is what the node sees of a lost one).
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first[0])
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE registration_windows SET opens_at = now() - interval '2 hours', closes_at = now() - interval '1 minute' WHERE term_id = $1")
        .bind(term)
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until("the node listens again", async || {
        let now = listener().await;
        now.len() == 1 && now[0] != first[0]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, body) = app.enroll(&token, y).await;
    let elapsed = cached_at.elapsed();
    let recorded: i64 = app
        .count(
            "SELECT count(*) FROM enrollments WHERE section_id = $1 AND status <> 'dropped'",
            y,
        )
        .await;
    eprintln!(
        "enroll {} ms after the window was cached, after a reconnect: {status} {body}; \
         recorded: {recorded} (student {student})",
        elapsed.as_millis()
    );
    // Within the cache's time to live, so only the reconnect can have forgotten it.
    assert!(
        elapsed < registrar::service::rule_cache::WINDOW_TTL,
        "too slow to judge"
    );
    assert_problem(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "registration_window_closed",
    );
    assert_eq!(recorded, 0);
    app.stop().await;
}
