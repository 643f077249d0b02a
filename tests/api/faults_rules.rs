//! The student rules across nodes under faults: a section commit stuck in PostgreSQL on
//! another node must not let the student's next request pass the rules beside it. Judged
//! by the rows in PostgreSQL (never two sections of one course), with proof that the
//! fault struck (the stuck enroll did commit, after its caller had stopped waiting).

use crate::cluster::{node_settings, wait_balanced};
use crate::helpers::*;
use registrar::cluster::shard_of;
use registrar::faults;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SHARDS: u32 = 16;

/// The node owning `shard`, by PostgreSQL.
async fn owner(app: &TestApp, shard: u32) -> String {
    sqlx::query_scalar("SELECT node_id FROM shard_owners WHERE shard = $1")
        .bind(shard as i32)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// POST an enroll of `token`'s student in `section` through `node`; (status, body).
async fn enroll_via(node: &TestApp, token: &str, section: Uuid) -> (StatusCode, Value) {
    let path = format!("/api/v1/sections/{section}/enrollments");
    answer(node.post(&path, Some(token), json!({})).await).await
}

/// The student's active places in sections of `course`.
async fn places_in(app: &TestApp, student: Uuid, course: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM enrollments e JOIN sections s ON s.id = e.section_id
          WHERE e.student_id = $1 AND e.status <> 'dropped' AND s.course_code = $2",
    )
    .bind(student)
    .bind(course)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The home node gives up on a hop after `2·lease + call timeout`; the enroll it sent is
/// still queued behind a commit stuck on the section's owner. The student's next enroll,
/// in another section of the same course, must wait for that outcome and be refused as a
/// duplicate course, not commit beside it.
#[tokio::test]
async fn a_stuck_commit_on_another_node_keeps_the_students_rules() {
    let database = fresh_database().await;
    let mut nodes = Vec::new();
    for id in ["node-1", "node-2"] {
        let mut s = node_settings(&database, id, SHARDS);
        s.sections.call_timeout_ms = 500;
        nodes.push(TestApp::start(s).await);
    }
    let home = &nodes[0];
    wait_balanced(home, 2, SHARDS as i64).await;
    let term = home.open_term().await;
    home.course("DUP300", 3, &[]).await;
    // A section on node-2, and another section of the same course (sections are made
    // until one lands there: seven were not always enough).
    let mut on_owner = None;
    let mut other = None;
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    for i in 0..40 {
        if on_owner.is_some() && other.is_some() {
            break;
        }
        // Every section meets at a time of its own: the student's two must not clash.
        let (code, day, hour) = (format!("S{i}"), days[i % days.len()], 8 + i / days.len());
        let (start, end) = (format!("{hour:02}:00"), format!("{hour:02}:50"));
        let s = home
            .section(term, "DUP300", &code, 10, 0, meet(day, &start, &end))
            .await;
        if on_owner.is_none() && owner(home, shard_of(s, SHARDS)).await == "node-2" {
            on_owner = Some(s);
        } else if other.is_none() {
            other = Some(s);
        }
    }
    let (stuck, next) = (on_owner.expect("a section on node-2"), other.unwrap());
    // A student whose home is node-1.
    let (student, token) = loop {
        let (id, token) = home.student().await;
        if owner(home, shard_of(id, SHARDS)).await == "node-1" {
            break (id, token);
        }
    };

    // node-2's commit of `stuck` takes 7 s: longer than node-1's patience (2·2 s + 0.5 s).
    faults::set("commit-stall", &format!("return({stuck}:7000)")).unwrap();
    let started = Instant::now();
    let first = tokio::spawn({
        let (url, client, token) = (
            home.url(&format!("/api/v1/sections/{stuck}/enrollments")),
            home.client.clone(),
            token.clone(),
        );
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            r.status()
        }
    });
    let first = first.await.unwrap();
    assert_eq!(
        first,
        StatusCode::SERVICE_UNAVAILABLE,
        "the first enroll must outlive its caller (decision_pending)"
    );
    tokio::time::sleep(Duration::from_millis(5_000).saturating_sub(started.elapsed())).await;
    faults::clear("commit-stall");
    // Past the home's patience, the stuck enroll not yet committed: the next one.
    let (st, body) = enroll_via(home, &token, next).await;
    assert!(
        st != StatusCode::CREATED || places_in(home, student, "DUP300").await <= 1,
        "{st} {body}"
    );
    // Once the stuck commit is through, the fault is proven and the rules judged.
    wait_until("the stuck enroll to commit", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM enrollments WHERE student_id = $1 AND section_id = $2
                AND status <> 'dropped'",
        )
        .bind(student)
        .bind(stuck)
        .fetch_one(&home.pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    // Let the second enroll's task (queued on the student's lock) finish too.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        places_in(home, student, "DUP300").await,
        1,
        "two sections of one course: the second enroll answered {st} {body}"
    );
    let (st, body) = enroll_via(home, &token, next).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "duplicate_course");
    for node in nodes {
        node.stop().await;
    }
}
