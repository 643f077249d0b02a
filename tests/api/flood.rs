//! The flood: thousands of concurrent enrolls over HTTP on one section. Exactly `capacity`
//! seats, exactly `waitlist` places numbered 1..N in decision order, everyone else refused
//! with `section_full`, and the database agrees with every acknowledgement.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_on_one_section_never_oversells_and_waitlists_in_order() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(50, 100, meet("mon", "09:00", "10:00")).await;
    let students = app.students(2000, &[]).await;

    let started = Instant::now();
    let answers = join_all(students.iter().map(|(id, token)| {
        let app = &app;
        async move { (*id, app.enroll(token, section).await) }
    }))
    .await;
    let elapsed = started.elapsed();

    let mut enrolled = HashSet::new();
    let mut waitlisted: HashMap<Uuid, i64> = HashMap::new();
    let mut full = 0;
    for (id, (status, body)) in &answers {
        match *status {
            StatusCode::CREATED => {
                assert_eq!(body["status"], "enrolled");
                enrolled.insert(*id);
            }
            StatusCode::ACCEPTED => {
                assert_eq!(body["status"], "waitlisted");
                waitlisted.insert(*id, body["position"].as_i64().unwrap());
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["code"], "section_full", "{body}");
                full += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(enrolled.len(), 50);
    assert_eq!(waitlisted.len(), 100);
    assert_eq!(full, 1850);
    let mut positions: Vec<i64> = waitlisted.values().copied().collect();
    positions.sort();
    assert_eq!(
        positions,
        (1..=100).collect::<Vec<_>>(),
        "positions are 1..100, each once"
    );

    // The database agrees with every acknowledgement, and holds nothing else.
    let rows = app.rows(section).await;
    let db_enrolled: HashSet<Uuid> = rows
        .iter()
        .filter(|r| r.1 == "enrolled")
        .map(|r| r.0)
        .collect();
    let db_waiting: HashMap<Uuid, i64> = rows
        .iter()
        .filter(|r| r.1 == "waitlisted")
        .map(|r| (r.0, r.2.unwrap()))
        .collect();
    assert_eq!(db_enrolled, enrolled);
    assert_eq!(
        db_waiting, waitlisted,
        "stored FIFO order equals the acknowledged positions"
    );
    let view = app.section_view(section).await;
    assert_eq!(view["seats_taken"], 50);
    assert_eq!(view["seats_left"], 0);
    assert_eq!(view["waitlist_length"], 100);

    // Batching: far fewer commits than decisions (one audit row per attempt, one outbox row per change).
    let sql = "SELECT count(*) FROM registration_attempts WHERE section_id = $1";
    assert_eq!(app.count(sql, section).await, 2000);
    let sql = "SELECT count(*) FROM outbox WHERE (payload->>'section_id')::uuid = $1";
    let events = app.count(sql, section).await;
    assert_eq!(events, 150, "one event per committed change");
    let batches = app.batches();
    assert!(
        batches < 400,
        "2000 decisions took {batches} commits; batching is not working"
    );
    eprintln!(
        "flood: 2000 enrolls in {elapsed:?} ({:.0}/s), {batches} commits",
        2000.0 / elapsed.as_secs_f64()
    );
    app.stop().await;
}
