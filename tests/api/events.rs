//! Events and the Redis mirror against the real RabbitMQ and Redis: every committed change
//! reaches the exchange (one event each, unique ids), a broker outage delays events but
//! never enrollments, the consumers apply each event once, and the mirror survives Redis
//! outages and flushes.

use crate::helpers::*;
use crate::proxy::{Proxy, target_of};
use fred::prelude::*;
use futures_util::StreamExt;
use futures_util::future::join_all;
use lapin::options::BasicAckOptions;
use registrar_actors::SectionId;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Collects every message published to `exchange` into a shared list.
async fn collect_events(exchange: &str) -> Arc<Mutex<Vec<Value>>> {
    let (link, mut consumer) = subscribe_events(exchange).await;
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        let _keep = link;
        while let Some(Ok(d)) = consumer.next().await {
            let mut v: Value = serde_json::from_slice(&d.data).unwrap();
            v["_routing_key"] = json!(d.routing_key.as_str());
            out.lock().unwrap().push(v);
            d.ack(BasicAckOptions::default()).await.unwrap();
        }
    });
    seen
}

/// Waits until `at_least` events have been collected, then listens 300 ms longer; every
/// event collected, and when the first `at_least` were in. The bounded wait serves the
/// negative checks that follow ("no event twice, none invented"): an extra delivery sends
/// no signal that could be awaited instead, and once every expected event is in, the relay
/// has nothing left to publish, so an extra copy would already be on its way.
async fn events_after_quiet(events: &Mutex<Vec<Value>>, at_least: usize) -> (Vec<Value>, Instant) {
    wait_until("all events on the exchange", async || {
        events.lock().unwrap().len() >= at_least
    })
    .await;
    let all_in = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    (events.lock().unwrap().clone(), all_in)
}

/// Enroll `students` in `section` while `service` is cut off: each is still acknowledged.
async fn enroll_all_without(
    app: &TestApp,
    students: &[(Uuid, String)],
    section: Uuid,
    service: &str,
) {
    let statuses = app.enroll_each(students, section).await;
    assert_eq!(
        statuses,
        vec![StatusCode::CREATED; students.len()],
        "enrollment must not depend on {service}"
    );
}

async fn backlog(app: &TestApp) -> i64 {
    registrar::store::outbox::backlog(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_change_is_published_once_and_consumed_once() {
    let app = TestApp::spawn_with(|s| s.events.consumers_in_process = true).await;
    let events = collect_events(&app.settings.events.events_exchange).await;
    let (term, section) = app.open_cs101(20, 30, meet("mon", "09:00", "10:00")).await;
    let students = app.students(300, &[]).await;
    let started = Instant::now();
    join_all(students.iter().map(|(_, t)| app.enroll(t, section))).await;
    // One drop promotes the waitlist head: two more changes.
    let first_enrolled = app
        .rows(section)
        .await
        .into_iter()
        .find(|r| r.1 == "enrolled")
        .unwrap()
        .0;
    let token = &students.iter().find(|s| s.0 == first_enrolled).unwrap().1;
    assert_eq!(app.drop_section(token, section).await.0, StatusCode::OK);

    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        expected, 52,
        "20 enrolled + 30 waitlisted + drop + promotion"
    );
    let (got, all_in) = events_after_quiet(&events, expected as usize).await;
    let relayed = all_in - started;
    assert_eq!(got.len() as i64, expected, "no event twice, none invented");
    let ids: HashSet<&str> = got
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), got.len(), "event ids are unique");
    for e in &got {
        assert_eq!(e["type"], e["_routing_key"]);
        for field in [
            "occurred_at",
            "section_id",
            "seats_taken",
            "capacity",
            "shard",
            "epoch",
        ] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
    }
    let count = |k: &str| got.iter().filter(|e| e["type"] == k).count();
    assert_eq!(
        (
            count("enrollment.created"),
            count("waitlist.added"),
            count("enrollment.dropped"),
            count("waitlist.promoted")
        ),
        (20, 30, 1, 1)
    );
    assert_eq!(backlog(&app).await, 0);

    // The consumers applied each event once.
    wait_until("consumers caught up", async || {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM consumed_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        n == 2 * expected
    })
    .await;
    let promoted = app
        .rows(section)
        .await
        .into_iter()
        .filter(|r| r.1 == "enrolled")
        .map(|r| r.0)
        .collect::<HashSet<Uuid>>();
    let promoted_student = got
        .iter()
        .find(|e| e["type"] == "waitlist.promoted")
        .unwrap()["student_id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    assert!(promoted.contains(&promoted_student));
    let token = app.token(promoted_student, registrar::resources::Role::Student);
    let notes = app
        .get_json("/api/v1/students/me/notifications", Some(&token))
        .await;
    let messages: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"Promoted from the waitlist to CS101-01"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Waitlisted for CS101-01 at position")),
        "{messages:?}"
    );
    let analytics = format!("/api/v1/analytics/terms/{term}");
    let figures = app.get_json(&analytics, Some(&app.admin_token)).await;
    assert_eq!(
        figures["totals"],
        json!({"enrolled": 20, "waitlisted": 30, "dropped": 1, "promoted": 1, "withdrawn": 0})
    );
    assert!(
        figures["sections"][0]["time_to_fill_secs"]
            .as_f64()
            .is_some()
    );
    assert_eq!(
        figures["per_minute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["enrolled"].as_i64().unwrap())
            .sum::<i64>(),
        21
    );
    eprintln!("events: {expected} events on the exchange {relayed:?} after the flood started");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_delays_events_never_enrollments() {
    let proxy = Proxy::start(target_of(&amqp_url())).await;
    let app = TestApp::spawn_with(|s| s.events.amqp_url = proxy.url_for(&amqp_url())).await;
    let events = collect_events(&app.settings.events.events_exchange).await;
    let (_, section) = app.open_cs101(100, 0, json!([])).await;
    let students = app.students(60, &[]).await;
    let statuses = app.enroll_each(&students[..10], section).await;
    assert_eq!(statuses, [StatusCode::CREATED; 10]);
    wait_until("first events", async || events.lock().unwrap().len() == 10).await;

    proxy.cut();
    enroll_all_without(&app, &students[10..60], section, "the broker").await;
    let waiting = backlog(&app).await;
    assert!(waiting > 0, "the backlog grows while the broker is away");
    let ready = app.get_json("/readyz", None).await;
    assert_eq!(ready["status"], "ready");
    assert!(
        ready["details"]["outbox_backlog"].as_i64().unwrap() > 0,
        "{ready}"
    );

    proxy.restore();
    wait_until("backlog drained", async || backlog(&app).await == 0).await;
    let (got, _) = events_after_quiet(&events, 60).await;
    let ids: HashSet<&str> = got
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 60, "every event delivered");
    // At-least-once on the wire: a dedupe on event_id leaves exactly one per change.
    assert!(got.len() >= 60);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_and_flush_never_stop_enrollment_and_the_mirror_heals() {
    let proxy = Proxy::start(target_of(&redis_url())).await;
    let app = TestApp::spawn_with(|s| s.mirror.redis_url = proxy.url_for(&redis_url())).await;
    let redis = Builder::from_config(Config::from_url(&redis_url()).unwrap())
        .build()
        .unwrap();
    redis.init().await.unwrap();
    let key_of = |s: Uuid| format!("{}:section:{s}", app.settings.mirror.redis_prefix);
    let mirrored = async |section: Uuid| -> Option<i64> {
        let v: Option<String> = redis.hget(key_of(section), "seats_taken").await.unwrap();
        v.map(|v| v.parse().unwrap())
    };
    let (_, section) = app.open_cs101(50, 0, json!([])).await;
    let students = app.students(30, &[]).await;
    app.enroll_each(&students[..5], section).await;
    wait_until("mirror written", async || {
        mirrored(section).await == Some(5)
    })
    .await;
    assert_eq!(app.section_view(section).await["seats_taken"], 5);

    proxy.cut();
    enroll_all_without(&app, &students[5..15], section, "Redis").await;
    let view = app.section_view(section).await;
    assert_eq!(view["seats_taken"], 15, "reads fall back to PostgreSQL");
    assert_eq!(
        mirrored(section).await,
        Some(5),
        "Redis itself was unreachable from the server"
    );
    proxy.restore();
    wait_until("mirror healed after the outage", async || {
        mirrored(section).await == Some(15)
    })
    .await;

    // Flushed: our keys vanish; reads stay right and the entry comes back.
    let _: i64 = redis.del(key_of(section)).await.unwrap();
    assert_eq!(app.section_view(section).await["seats_taken"], 15);
    wait_until("mirror healed after a flush", async || {
        mirrored(section).await == Some(15)
    })
    .await;
    app.enroll_each(&students[15..20], section).await;
    wait_until("mirror follows commits", async || {
        mirrored(section).await == Some(20)
    })
    .await;
    assert_eq!(app.section_view(section).await["seats_left"], 30);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_seat_stream_subscribers_all_see_each_commit() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let subscribers = 500;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..subscribers {
        let stream = app.seat_stream(&client, section).await;
        streams.push(stream.with_patience(Duration::from_secs(10)));
    }
    // Each stream first yields the current counts.
    for s in streams.iter_mut() {
        assert_eq!(s.next_event().await["seats_taken"], 0);
    }
    let (_, token) = app.student().await;
    let committed = Instant::now();
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    let latencies = join_all(streams.iter_mut().map(async |s| {
        while s.next_event().await["seats_taken"] != 1 {}
        committed.elapsed()
    }))
    .await;
    let worst = latencies.iter().max().unwrap();
    eprintln!(
        "seat stream: {subscribers} subscribers, slowest got the count {worst:?} after the enroll was sent"
    );
    drop(streams);
    app.stop().await;
}

/// While Redis is down, section reads skip it (the breaker) instead of each waiting for a
/// Redis timeout; and a read that heals a missing entry never overwrites newer counts.
#[tokio::test]
async fn redis_breaker_skips_reads_while_down_and_heals_never_overwrite_newer_counts() {
    let proxy = Proxy::start(target_of(&redis_url())).await;
    let app = TestApp::spawn_with(|s| s.mirror.redis_url = proxy.url_for(&redis_url())).await;
    let mirror = app.feed.mirror.clone().expect("mirror enabled");
    let redis = Builder::from_config(Config::from_url(&redis_url()).unwrap())
        .build()
        .unwrap();
    redis.init().await.unwrap();
    let key = |s: Uuid| format!("{}:section:{s}", app.settings.mirror.redis_prefix);
    let (_, section) = app.open_cs101(50, 0, json!([])).await;
    let students = app.students(5, &[]).await;
    app.enroll_each(&students, section).await;
    wait_until("mirror written", async || {
        let v: Option<String> = redis.hget(key(section), "seats_taken").await.unwrap();
        v.as_deref() == Some("5")
    })
    .await;
    assert_eq!(app.section_view(section).await["seats_taken"], 5);

    proxy.cut();
    let bypassed = mirror.bypassed.load(Ordering::Relaxed);
    for _ in 0..10 {
        assert_eq!(app.section_view(section).await["seats_taken"], 5);
    }
    let skipped = mirror.bypassed.load(Ordering::Relaxed) - bypassed;
    assert!(
        skipped >= 5,
        "only {skipped} of 10 reads skipped the dead Redis"
    );

    proxy.restore();
    wait_until("reads use Redis again", async || {
        let hits = mirror.hits.load(Ordering::Relaxed);
        app.section_view(section).await;
        mirror.hits.load(Ordering::Relaxed) > hits
    })
    .await;
    // A heal reads PostgreSQL at (the shard's epoch, 0): older than the commit the mirror
    // holds, so it must not overwrite it (the changed count shows whether it did).
    let held: Option<String> = redis.hget(key(section), "epoch").await.unwrap();
    let epoch: i64 = held.expect("commits write their version").parse().unwrap();
    let _: () = redis.hset(key(section), ("seats_taken", 4)).await.unwrap();
    let stale = mirror.stale.load(Ordering::Relaxed);
    mirror.heal(SectionId(section));
    wait_until("heal refused", async || {
        mirror.stale.load(Ordering::Relaxed) > stale
    })
    .await;
    let v: Option<String> = redis.hget(key(section), "seats_taken").await.unwrap();
    assert_eq!(v.as_deref(), Some("4"), "a heal overwrote newer counts");
    // Counts an older owner left (an older epoch) are older than the read: replaced.
    let older = vec![
        ("epoch", (epoch - 1).to_string()),
        ("seq", i64::MAX.to_string()),
    ];
    let _: () = redis.hset(key(section), older).await.unwrap();
    mirror.heal(SectionId(section));
    wait_until("heal replaces an older epoch's counts", async || {
        let v: Option<String> = redis.hget(key(section), "seats_taken").await.unwrap();
        v.as_deref() == Some("5")
    })
    .await;
    // On a missing entry the heal fills it in, at the version of its read.
    let _: i64 = redis.del(key(section)).await.unwrap();
    mirror.heal(SectionId(section));
    wait_until("heal fills a missing entry", async || {
        let v: Option<String> = redis.hget(key(section), "seats_taken").await.unwrap();
        v.as_deref() == Some("5")
    })
    .await;
    let version: Vec<Option<String>> = redis
        .hmget(key(section), vec!["epoch", "seq"])
        .await
        .unwrap();
    assert_eq!(
        version,
        vec![Some(epoch.to_string()), Some("0".to_string())]
    );
    app.stop().await;
}
