//! Seat counts with several nodes, against the real PostgreSQL and Redis: counts carry a
//! version, and neither the Redis mirror nor a node's seat streams ever go back to older
//! counts (an old owner's late write or message); and a seat stream on one node follows
//! the commits of the node that owns the section, also after the section moves.

use crate::helpers::*;
use fred::prelude::*;
use registrar::redis::wire;
use registrar::redis::{SeatCounts, SeatMessage, SeatMirror};
use registrar::shutdown::ShutdownTrigger;
use registrar_actors::{Counts, SectionId, Version};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

/// A plain Redis client, as another node's code would use it.
async fn redis() -> Client {
    let client = Builder::from_config(Config::from_url(&redis_url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

/// The section's mirrored (version, seats taken).
async fn mirrored(redis: &Client, prefix: &str, section: Uuid) -> (Version, u32) {
    let key = format!("{prefix}:section:{section}");
    let fields: Vec<Option<String>> = redis
        .hmget(key, vec!["epoch", "seq", "seats_taken"])
        .await
        .unwrap();
    let field = |i: usize| fields[i].clone().unwrap_or_default();
    let version = Version {
        epoch: field(0).parse().unwrap_or(-1),
        seq: field(1).parse().unwrap_or(0),
    };
    (version, field(2).parse().unwrap_or(0))
}

fn seats(version: Version, taken: u32) -> SeatCounts {
    SeatCounts {
        version,
        counts: Counts {
            seats_taken: taken,
            capacity: 10,
            waitlist_length: 0,
            waitlist_capacity: 0,
            reserved_seats_left: 0,
        },
    }
}

/// Enroll `token` in `section` through `node`; the node that decided the seat.
async fn enroll_through(node: &TestApp, token: &str, section: Uuid) -> String {
    let path = format!("/api/v1/sections/{section}/enrollments");
    let r = node.post(&path, Some(token), json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.headers()["x-registrar-node"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Read `stream` until its seats taken reach `taken`; every count seen on the way, which
/// must never go down.
async fn follow_until(stream: &mut EventStream, taken: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        let event: Value = stream.next_event().await;
        let now = event["seats_taken"].as_u64().unwrap();
        seen.push(now);
        assert!(seen.is_sorted(), "the stream went back: {seen:?}");
        if now == taken {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_owners_late_write_or_message_never_replaces_newer_counts() {
    let app = TestApp::spawn_with(|s| s.events.relay_enabled = false).await;
    let prefix = app.settings.mirror.redis_prefix.clone();
    let redis = redis().await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let mut stream = app.seat_stream(&app.client, section).await;
    assert_eq!(stream.next_event().await["seats_taken"], 0);
    app.enroll_each(&app.students(2, &[]).await, section).await;
    wait_until("the commit mirrored", async || {
        mirrored(&redis, &prefix, section).await.1 == 2
    })
    .await;
    let (now, _) = mirrored(&redis, &prefix, section).await;
    assert!(now.seq > 0, "a commit's version: {now:?}");

    // The previous owner of the shard (an older epoch, with a later wall-clock stamp)
    // writes late through its own mirror writer, whose start-up rebuild is refused too.
    let old_owner = SeatMirror::new(&redis_url(), &prefix).unwrap();
    let stop = ShutdownTrigger::new();
    let writer = tokio::spawn(
        old_owner
            .clone()
            .run_writer(app.pool.clone(), stop.subscribe()),
    );
    wait_until("the old owner's rebuild refused", async || {
        old_owner.stale.load(Ordering::Relaxed) >= 1
    })
    .await;
    let late = Version {
        epoch: now.epoch - 1,
        seq: now.seq + 1_000_000,
    };
    old_owner.record(SectionId(section), seats(late, 0));
    wait_until("the late write refused", async || {
        old_owner.stale.load(Ordering::Relaxed) >= 2
    })
    .await;
    assert_eq!(mirrored(&redis, &prefix, section).await, (now, 2));

    // Late or reordered messages on the seat channel change no watcher's counts; the
    // newer one published after them (in order, on one connection) does.
    let channel = wire::channel(&prefix);
    let applied = app.feed.remote.applied.load(Ordering::Relaxed);
    let older_stamp = Version {
        seq: now.seq - 1,
        ..now
    };
    let newer = Version {
        epoch: now.epoch + 1,
        seq: 1,
    };
    let messages = [
        seats(late, 0),
        seats(older_stamp, 1),
        seats(now, 9),
        seats(newer, 7),
    ];
    for m in messages {
        let body = SeatMessage::new(SectionId(section), m).encode();
        let _: i64 = redis.publish(channel.as_str(), body).await.unwrap();
    }
    assert_eq!(follow_until(&mut stream, 7).await.last(), Some(&7));
    assert_eq!(
        app.feed.remote.applied.load(Ordering::Relaxed),
        applied + 1,
        "only the newer message was applied"
    );
    // The stream sent nothing else meanwhile.
    let quiet = tokio::time::timeout(Duration::from_millis(300), stream.next_event()).await;
    assert!(quiet.is_err(), "an older message reached the stream");

    stop.fire();
    writer.await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_stream_follows_a_section_decided_on_another_node_and_after_it_moves() {
    // Three nodes on one database and one Redis prefix, sharing the shards.
    let mut nodes = crate::cluster::cluster_of(3, 16).await;
    crate::cluster::wait_balanced(&nodes[0], 3, 16).await;
    let (_, section) = nodes[0].open_cs101(10, 0, json!([])).await;
    let owner = crate::cluster::owner_of(&nodes[0], section).await;
    let at = |id: &str, nodes: &[TestApp]| {
        nodes
            .iter()
            .position(|n| n.settings.cluster.node_id == id)
            .unwrap()
    };
    // Watch from a node that does not own the section.
    let watcher = nodes.remove((at(&owner, &nodes) + 1) % 3);
    let students = watcher.students(5, &[]).await;
    let mut stream = watcher.seat_stream(&watcher.client, section).await;
    assert_eq!(stream.next_event().await["seats_taken"], 0);

    for (_, token) in &students[..3] {
        assert_eq!(enroll_through(&watcher, token, section).await, owner);
    }
    follow_until(&mut stream, 3).await;
    assert_eq!(watcher.batches(), 0, "the watching node decided nothing");
    assert!(watcher.feed.remote.applied.load(Ordering::Relaxed) > 0);

    // The section moves: its owner stops and hands its shards to the others.
    let old = nodes.remove(at(&owner, &nodes));
    old.stop().await;
    for (_, token) in &students[3..] {
        assert_ne!(enroll_through(&watcher, token, section).await, owner);
    }
    follow_until(&mut stream, 5).await;
    let redis = redis().await;
    let prefix = &watcher.settings.mirror.redis_prefix;
    wait_until("the new owner's counts mirrored", async || {
        mirrored(&redis, prefix, section).await.1 == 5
    })
    .await;

    drop(stream);
    for node in nodes {
        node.stop().await;
    }
    watcher.stop().await;
}
