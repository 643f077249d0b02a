//! The outbox against the real PostgreSQL and RabbitMQ: a change keeps its event id when
//! its commit is retried (a lost COMMIT reply) or its request replayed, an event no
//! queue would receive stays in the outbox until one is bound, the publication cursor
//! never passes an event whose transaction commits late, and relays of several
//! nodes on one database publish every event once, in commit order (a crashed one's
//! rows again), while the consumers apply each once.

use crate::helpers::*;
use chrono::Utc;
use futures_util::StreamExt;
use futures_util::future::join_all;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use registrar::events::consumers::{self, ConsumerConfig, ConsumerKind};
use registrar::events::relay::{OutboxRelay, RelayStats};
use registrar::shutdown::ShutdownTrigger;
use registrar::store::outbox;
use registrar::store::sections::PgSectionStore;
use registrar_actors::ledger::{Change, ChangeKind, Counts, Outcome, Placement};
use registrar_actors::{AttemptRecord, CommitBatch, RequestId, SectionId, SectionStore, StudentId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

/// Outbox rows of `kind` about `student`.
async fn events_about(app: &TestApp, kind: &str, student: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE routing_key = $1 AND payload->>'student_id' = $2",
    )
    .bind(kind)
    .bind(student.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_retried_after_a_lost_reply_writes_each_event_once() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let (student, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    // The shard and epoch the section is written under, as its first event recorded them.
    let first: Value = sqlx::query_scalar("SELECT payload FROM outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (shard, epoch) = (
        first["shard"].as_u64().unwrap() as u32,
        first["epoch"].as_i64().unwrap(),
    );

    // A drop batch exactly as an actor would commit it. The committer retries a batch
    // whose transaction reported an error, and the error may be a lost reply to a COMMIT
    // that succeeded: the same batch then reaches the database twice.
    let request = RequestId(Uuid::new_v4());
    let counts = Counts {
        seats_taken: 0,
        capacity: 10,
        waitlist_length: 0,
        waitlist_capacity: 0,
        reserved_seats_left: 0,
    };
    let batch = CommitBatch {
        section: SectionId(section),
        shard,
        epoch,
        decided_at: Utc::now(),
        counts,
        changes: vec![Change {
            kind: ChangeKind::Dropped {
                student: StudentId(student),
                from: Placement::Enrolled,
                withdrawn: false,
            },
            request,
            counts,
            pool: None,
            permits: Vec::new(),
            over_capacity: false,
        }],
        attempts: vec![AttemptRecord {
            request,
            student: Some(StudentId(student)),
            action: "drop",
            outcome: Ok(Outcome::Dropped {
                from: Placement::Enrolled,
                promoted: None,
                withdrawn: false,
            }),
            home: None,
        }],
        after: None,
    };
    let store = PgSectionStore::new(app.pool.clone(), app.settings.cluster.node_id.clone());
    store.commit(&batch).await.expect("first commit");
    store
        .commit(&batch)
        .await
        .expect("the retried commit of a committed batch must not fail");
    assert_eq!(
        events_about(&app, "enrollment.dropped", student).await,
        1,
        "the retried batch wrote its event a second time"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_yields_no_second_event() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let (student, token) = app.student().await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    for _ in 0..2 {
        let r = app
            .request(Method::POST, &path, Some(&token))
            .header("Idempotency-Key", "enroll-once")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    assert_eq!(events_about(&app, "enrollment.created", student).await, 1);
    app.stop().await;
}

/// Events not yet published (past the cursor or waiting for a retry).
async fn unpublished(app: &TestApp) -> i64 {
    outbox::backlog(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_event_stays_in_the_outbox_until_a_queue_is_bound() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let (_, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    // No queue is bound to this test's exchange: the broker cannot deliver the event.
    wait_until(
        "the relay tried (or marked the event published)",
        async || {
            unpublished(&app).await == 0
                || metric(&app, "registrar_events_unroutable_total").await > 0
        },
    )
    .await;
    assert_eq!(
        unpublished(&app).await,
        1,
        "an event no queue received was marked published"
    );

    // Once a queue is bound, the retry delivers it.
    let exchange = &app.settings.events.events_exchange;
    let (_link, mut deliveries) = subscribe_events(exchange).await;
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(20), deliveries.next())
        .await
        .expect("the event arrives once a queue is bound")
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(event["type"], "enrollment.created");
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    wait_until("the event marked published", async || {
        unpublished(&app).await == 0
    })
    .await;
    app.stop().await;
}

/// Insert one outbox event with routing key `key` in `tx` (its own transaction id).
async fn insert_event(tx: &mut sqlx::PgConnection, key: &str) {
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, payload) VALUES (gen_random_uuid(), $1, '{}')",
    )
    .bind(key)
    .execute(tx)
    .await
    .unwrap();
}

/// The routing keys a claim of up to 10 events takes, in its order; the claim finishes
/// with every event published.
async fn claim_keys(app: &TestApp) -> Vec<String> {
    let claim = outbox::claim(&app.pool, 10).await.unwrap().unwrap();
    let keys = claim.events.iter().map(|e| e.routing_key.clone()).collect();
    let ids: Vec<i64> = claim.events.iter().map(|e| e.id).collect();
    claim.finish(&ids, &[]).await.unwrap();
    keys
}

/// The routing keys of the next `n` events claims take, in order. Other tests' transactions
/// on the same server hold the cursor back while they run (as any transaction does), so
/// this claims again until `n` came, for at most 10 s.
async fn claim_n_keys(app: &TestApp, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut keys = Vec::new();
    while keys.len() < n && std::time::Instant::now() < deadline {
        keys.extend(claim_keys(app).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_never_passes_an_event_whose_transaction_commits_later() {
    let app = TestApp::spawn_with(|s| s.events.relay_enabled = false).await;
    // `early` writes its event first (its transaction id is the older one) but commits
    // after `late`: a cursor moved past `late` at once would skip `early` for good.
    let mut early = app.pool.begin().await.unwrap();
    insert_event(&mut early, "early").await;
    let mut late = app.pool.begin().await.unwrap();
    insert_event(&mut late, "late").await;
    late.commit().await.unwrap();
    assert_eq!(
        unpublished(&app).await,
        1,
        "the committed event is in the backlog"
    );
    assert!(
        claim_keys(&app).await.is_empty(),
        "an event was taken while an older transaction still runs"
    );
    // Another relay holding the cursor: this one has nothing to do.
    let holder = outbox::claim(&app.pool, 10).await.unwrap().unwrap();
    assert!(outbox::claim(&app.pool, 10).await.unwrap().is_none());
    holder.release().await.unwrap();

    early.commit().await.unwrap();
    assert_eq!(
        claim_n_keys(&app, 2).await,
        ["early", "late"],
        "in transaction order"
    );
    assert_eq!(unpublished(&app).await, 0);
    assert!(
        claim_keys(&app).await.is_empty(),
        "each event is claimed once"
    );

    // An aborted transaction holds the cursor back only while it runs.
    let mut aborted = app.pool.begin().await.unwrap();
    insert_event(&mut aborted, "aborted").await;
    let mut after = app.pool.begin().await.unwrap();
    insert_event(&mut after, "after").await;
    after.commit().await.unwrap();
    assert!(claim_keys(&app).await.is_empty());
    aborted.rollback().await.unwrap();
    assert_eq!(claim_n_keys(&app, 1).await, ["after"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_cluster_with_lower_transaction_ids_strands_no_event() {
    let app = TestApp::spawn_with(|s| s.events.relay_enabled = false).await;
    // As the rows of a dump from a cluster far ahead in transaction ids: one event
    // published (behind the cursor), one not (past it).
    let far = 1_000_000_000_000_i64;
    for (key, txid) in [("published", far), ("waiting", far + 2)] {
        sqlx::query(
            "INSERT INTO outbox (event_id, routing_key, payload, txid)
             VALUES (gen_random_uuid(), $1, '{}', $2)",
        )
        .bind(key)
        .bind(txid)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE outbox_cursor SET txid = $1, id = (SELECT max(id) FROM outbox)")
        .bind(far + 1)
        .execute(&app.pool)
        .await
        .unwrap();
    // Written by this cluster before anything noticed: its id is below the cursor.
    insert_event(&mut app.pool.acquire().await.unwrap(), "new").await;
    assert!(
        claim_keys(&app).await.is_empty(),
        "the stranding this guards against"
    );

    // What a node's start runs after the migrations.
    registrar::store::migrate(&app.pool).await.unwrap();
    assert_eq!(claim_n_keys(&app, 2).await, ["waiting", "new"]);
    assert!(
        !outbox::renumber_after_restore(&app.pool).await.unwrap(),
        "renumbered twice"
    );
    insert_event(&mut app.pool.acquire().await.unwrap(), "later").await;
    assert_eq!(claim_n_keys(&app, 1).await, ["later"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_scrapes_report_the_backlog_without_counting_it_each_time() {
    let app = TestApp::spawn_with(|s| {
        s.events.relay_enabled = false;
        // Longer than this test: after the first count, every figure comes from the cache.
        s.events.backlog_max_age_ms = 3_600_000;
    })
    .await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let (_, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    assert_eq!(
        app.get_json("/readyz", None).await["details"]["outbox_backlog"],
        1
    );
    // While a transaction holds the outbox, a count of its rows waits for it: a probe
    // or a scrape that counts would hang until the lock is released.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let patience = std::time::Duration::from_secs(10);
    let ready = tokio::time::timeout(patience, app.get_json("/readyz", None))
        .await
        .expect("/readyz waited for a count of the outbox");
    assert_eq!(ready["details"]["outbox_backlog"], 1);
    let metrics = tokio::time::timeout(patience, metric(&app, "registrar_outbox_backlog"))
        .await
        .expect("/metrics waited for a count of the outbox");
    assert_eq!(metrics, 1);
    lock.rollback().await.unwrap();
    app.stop().await;
}

/// Whether `queue` exists on the broker (a passive declare, on a channel of its own since
/// a failed one closes its channel).
async fn queue_exists(link: &registrar::events::amqp::Link, queue: &str) -> bool {
    let Ok(channel) = link.connection.create_channel().await else {
        return false;
    };
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let exists = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .is_ok();
    let _ = channel.close(0, "checked".into()).await;
    exists
}

/// A count from the database (`sql` selects one `int8`, no parameters).
async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_database_publish_every_event_and_consumers_apply_each_once() {
    // The node runs no relay of its own: the two below stand for the relays of two nodes
    // sharing the database, and two consumers of each kind for those nodes' consumers.
    let app = TestApp::spawn_with(|s| s.events.relay_enabled = false).await;
    let events = app.settings.events.clone();
    let (link, mut deliveries) = subscribe_events(&events.events_exchange).await;
    let stop = ShutdownTrigger::new();
    let mut tasks = Vec::new();
    for kind in [ConsumerKind::Notify, ConsumerKind::Analytics] {
        for _ in 0..2 {
            let config = ConsumerConfig::of(kind, &events);
            tasks.push(tokio::spawn(consumers::run(
                kind,
                app.pool.clone(),
                config,
                stop.subscribe(),
            )));
        }
        let queue = ConsumerConfig::of(kind, &events).queue;
        wait_until("consumer queue declared", async || {
            queue_exists(&link, &queue).await
        })
        .await;
    }
    let (_, section) = app.open_cs101(400, 0, json!([])).await;
    let students = app.students(300, &[]).await;
    let (early, late) = students.split_at(150);
    join_all(early.iter().map(|(_, t)| app.enroll(t, section))).await;

    // A relay that crashed after the broker confirmed its round but before marking it: its
    // claim rolls back and the rows are published again, by the relays below.
    // Other tests' transactions on the server hold the cursor back while they run: claim
    // (and let go) until a round of 20 is visible, for at most 10 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let crashed = loop {
        let claim = outbox::claim(&app.pool, 20).await.unwrap().unwrap();
        if claim.events.len() == 20 || std::time::Instant::now() > deadline {
            break claim;
        }
        drop(claim);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(crashed.events.len(), 20);
    for event in &crashed.events {
        let body = serde_json::to_vec(&event.payload).unwrap();
        let confirm = link
            .channel
            .basic_publish(
                events.events_exchange.as_str().into(),
                event.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        drop(confirm);
    }
    drop(crashed);

    let relays: Vec<Arc<RelayStats>> = (0..2).map(|_| Arc::default()).collect();
    for stats in &relays {
        let relay = OutboxRelay::new(
            app.pool.clone(),
            events.amqp_url.clone(),
            events.events_exchange.clone(),
            16,
            app.relay_wake.clone(),
            stats.clone(),
        );
        tasks.push(tokio::spawn(relay.run(stop.subscribe())));
    }
    // More commits while both relays run, each waking one of them.
    let statuses = join_all(late.iter().map(|(_, t)| app.enroll(t, section))).await;
    assert!(statuses.iter().all(|(s, _)| *s == StatusCode::CREATED));

    let rows = scalar(&app, "SELECT count(*) FROM outbox").await;
    assert_eq!(rows, 300);
    wait_until("every outbox row published", async || {
        unpublished(&app).await == 0
    })
    .await;
    let marked: Vec<u64> = relays
        .iter()
        .map(|s| s.published.load(Ordering::Relaxed))
        .collect();
    assert_eq!(
        marked.iter().sum::<u64>(),
        rows as u64,
        "each row marked by one relay"
    );

    // Every event id reached the exchange, the crashed relay's twice.
    let ids: HashSet<Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut seen: HashMap<Uuid, u32> = HashMap::new();
    let mut arrived = Vec::new();
    while seen.len() < ids.len() || seen.values().sum::<u32>() < rows as u32 + 20 {
        let delivery = tokio::time::timeout(Duration::from_secs(20), deliveries.next())
            .await
            .expect("every event delivered")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_slice(&delivery.data).unwrap();
        let id: Uuid = event["event_id"].as_str().unwrap().parse().unwrap();
        assert!(ids.contains(&id), "an event no outbox row holds: {event}");
        *seen.entry(id).or_default() += 1;
        arrived.push(id);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(seen.values().filter(|n| **n > 1).count(), 20);
    // The relays take turns on the cursor: after the crashed claim's copies, which were
    // published first, the events arrived in commit order, whichever relay sent them.
    let committed: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox ORDER BY txid, id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(arrived[20..], committed[..], "events out of commit order");

    // Each consumer applied each event once, the duplicates included.
    wait_until("consumers caught up", async || {
        scalar(&app, "SELECT count(*) FROM consumed_events").await == 2 * rows
    })
    .await;
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM notifications").await,
        rows
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT COALESCE(sum(enrolled), 0)::int8 FROM section_stats"
        )
        .await,
        rows
    );
    stop.fire();
    for task in tasks {
        task.await.unwrap();
    }
    app.stop().await;
}
