//! PostgreSQL going away in the middle of registration (a restart, a failover): while it
//! is gone every answer is a 503 with a retryable code, never a 500 or a hang; the node
//! recovers by itself; and every decision it acknowledged is in the database afterwards.
//! The outage is a TCP proxy cut between the node and the shared PostgreSQL (`proxy`), so
//! other tests are not disturbed.

use crate::helpers::*;
use crate::proxy::{Proxy, target_of};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

#[tokio::test]
async fn a_database_outage_answers_503_recovers_and_loses_no_acknowledged_decision() {
    let proxy = Proxy::start(target_of(&admin_url())).await;
    let app = TestApp::spawn_with(|s| {
        s.database.database_url = proxy.url_for(&s.database.database_url);
        s.database.acquire_timeout_ms = 300;
        // Section reads would otherwise be served by the mirror during the outage.
        s.mirror.mirror_enabled = false;
    })
    .await;
    let (_, section) = app.open_cs101(100, 0, json!([])).await;
    let students = app.students(45, &[]).await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    let enroll = async |(id, token): &(Uuid, String)| -> (Uuid, StatusCode, Value) {
        let r = app
            .request(Method::POST, &path, Some(token))
            .header("Idempotency-Key", format!("enroll-{id}"))
            .send()
            .await
            .expect("the node answers");
        let (status, body) = answer(r).await;
        (*id, status, body)
    };
    let mut acknowledged = HashSet::new();
    let note = |acknowledged: &mut HashSet<Uuid>, answers: Vec<(Uuid, StatusCode, Value)>| {
        for (id, status, body) in answers {
            if status == StatusCode::CREATED {
                acknowledged.insert(id);
            }
            assert!(
                status == StatusCode::CREATED || status == StatusCode::SERVICE_UNAVAILABLE,
                "{status} {body}"
            );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    ["unavailable", "decision_pending", "overloaded"].contains(&code),
                    "{body}"
                );
            }
        }
    };

    let before = join_all(students[..15].iter().map(enroll)).await;
    assert!(before.iter().all(|(_, s, _)| *s == StatusCode::CREATED));
    note(&mut acknowledged, before);

    proxy.cut();
    let during = join_all(students[15..30].iter().map(enroll)).await;
    assert!(
        during
            .iter()
            .all(|(_, s, _)| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{during:?}"
    );
    note(&mut acknowledged, during);

    proxy.restore();
    wait_until("the node recovers by itself", async || {
        enroll(&students[30]).await.1 == StatusCode::CREATED
    })
    .await;
    acknowledged.insert(students[30].0);
    // The students refused during the outage retry with their keys; the rest come new.
    let after = join_all(students[15..].iter().map(enroll)).await;
    assert!(
        after.iter().all(|(_, s, _)| *s == StatusCode::CREATED),
        "{after:?}"
    );
    note(&mut acknowledged, after);

    let seated: Vec<Uuid> = sqlx::query_scalar(
        "SELECT student_id FROM enrollments WHERE section_id = $1 AND status = 'enrolled'",
    )
    .bind(section)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let seated_set: HashSet<Uuid> = seated.iter().copied().collect();
    assert_eq!(seated.len(), seated_set.len(), "a student holds two seats");
    assert_eq!(seated_set, acknowledged, "acknowledged and recorded differ");
    assert_eq!(acknowledged.len(), students.len());
}
