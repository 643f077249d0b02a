//! Crash and restart: the real `registrar serve` binary is SIGKILLed in the middle of a
//! flood, then started again on the same database. Every acknowledged enrollment is still
//! there with the status it was acknowledged with, nothing is there that nobody asked for,
//! and the restarted node keeps enforcing the capacity.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

struct Node {
    child: Child,
    address: String,
}

fn start_node(settings: &registrar::config::Settings) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .arg("serve")
        .env("REGISTRAR_DATABASE_URL", &settings.database.database_url)
        .env("REGISTRAR_LISTEN", "127.0.0.1:0")
        .env("REGISTRAR_JWT_SECRET", SECRET.as_str())
        .env("REGISTRAR_NODE_ID", "test-node")
        .env("REGISTRAR_SHARDS", settings.cluster.shards.to_string())
        .env("REGISTRAR_RATE_LIMIT_PER_SEC", "0")
        .env("REGISTRAR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start registrar serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read address");
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("address printed")
        .to_string();
    assert!(
        address.starts_with("http://127.0.0.1:"),
        "unexpected banner {line:?}"
    );
    Node { child, address }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_flood_loses_no_acknowledged_enrollment() {
    // Catalog and students through an in-process node, which then stops.
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(100, 100, json!([])).await;
    let students = app.students(600, &[]).await;
    let settings = app.stop().await;
    let pool = sqlx::PgPool::connect(&settings.database.database_url)
        .await
        .unwrap();

    let mut node = start_node(&settings);
    let client = reqwest::Client::new();
    let acked = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (client, address, acked) = (client.clone(), node.address.clone(), acked.clone());
        let first: Vec<(Uuid, String)> = students[..400].to_vec();
        tokio::spawn(async move {
            join_all(first.into_iter().map(|(id, token)| {
                let (client, address, acked) = (client.clone(), address.clone(), acked.clone());
                async move {
                    let r = client
                        .post(format!("{address}/api/v1/sections/{section}/enrollments"))
                        .bearer_auth(token)
                        .send()
                        .await;
                    let answer = match r {
                        Ok(r) => {
                            let st = r.status();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            Some((st, body))
                        }
                        Err(_) => None,
                    };
                    if answer.is_some() {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    (id, answer)
                }
            }))
            .await
        })
    };
    // Kill once some answers are out but the flood is not over.
    wait_until("60 answers", async || acked.load(Ordering::SeqCst) >= 60).await;
    node.child.kill().expect("SIGKILL");
    node.child.wait().unwrap();
    let answers = flood.await.unwrap();

    let mut seat: HashSet<Uuid> = HashSet::new();
    let mut waiting: Vec<(i64, Uuid)> = vec![];
    for (id, answer) in &answers {
        match answer {
            Some((StatusCode::CREATED, _)) => {
                seat.insert(*id);
            }
            Some((StatusCode::ACCEPTED, b)) => waiting.push((b["position"].as_i64().unwrap(), *id)),
            Some((st, b)) => assert!(
                st.is_client_error() && b["code"] == "section_full",
                "{st} {b}"
            ),
            None => {}
        }
    }
    assert!(
        !seat.is_empty(),
        "some enrollments were acknowledged before the kill"
    );

    // The database holds every acknowledgement, and only students who asked.
    let rows: Vec<(Uuid, String, Option<i64>)> = sqlx::query_as(
        "SELECT student_id, status, waitlist_seq FROM enrollments WHERE section_id = $1 AND status <> 'dropped'",
    )
    .bind(section)
    .fetch_all(&pool)
    .await
    .unwrap();
    let by_student: HashMap<Uuid, (String, Option<i64>)> =
        rows.iter().map(|r| (r.0, (r.1.clone(), r.2))).collect();
    assert_eq!(by_student.len(), rows.len(), "one row per student");
    for id in &seat {
        assert_eq!(
            by_student.get(id).map(|r| r.0.as_str()),
            Some("enrolled"),
            "acknowledged seat of {id} lost"
        );
    }
    waiting.sort();
    let mut last_seq = 0;
    for (_, id) in &waiting {
        let (status, seq) = by_student
            .get(id)
            .expect("acknowledged waitlist place lost");
        assert_eq!(status, "waitlisted");
        assert!(
            seq.unwrap() > last_seq,
            "acknowledged waitlist order preserved"
        );
        last_seq = seq.unwrap();
    }
    let asked: HashSet<Uuid> = students[..400].iter().map(|s| s.0).collect();
    assert!(
        by_student.keys().all(|id| asked.contains(id)),
        "a row nobody asked for"
    );

    // Restart and keep going: the capacity holds across the restart.
    let node = start_node(&settings);
    let rest = join_all(students[400..].iter().map(|(_, token)| {
        client
            .post(format!(
                "{}/api/v1/sections/{section}/enrollments",
                node.address
            ))
            .bearer_auth(token)
            .send()
    }))
    .await;
    assert!(rest.iter().all(|r| {
        r.as_ref()
            .is_ok_and(|r| r.status() != StatusCode::INTERNAL_SERVER_ERROR)
    }));
    let (taken, waiting_now): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'enrolled'), count(*) FILTER (WHERE status = 'waitlisted') FROM enrollments WHERE section_id = $1",
    )
    .bind(section)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (taken, waiting_now),
        (100, 100),
        "filled exactly to capacity after the restart"
    );
    let (counter, wl): (i32, i32) =
        sqlx::query_as("SELECT seats_taken, waitlist_length FROM sections WHERE id = $1")
            .bind(section)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((counter, wl), (100, 100));
    let mut node = node;
    node.child.kill().unwrap();
    node.child.wait().unwrap();
}
