//! Operators move shards during the peak: a move of the hot section's shard in the middle
//! of a flood, ten moves back and forth under enroll/drop churn, a drain under load, each
//! with zero failed requests (no 5xx, no timeout) and a clean database; two handoffs of one
//! shard overlapping on its owner; and every bad operator request gets its code.
//!
//! The tests about requests held during a move make the overlap happen with the
//! `handoff-hold` failpoint (`registrar::faults`: the old owner's handoff holds with the
//! shard's gates closed) and assert that requests were held, so they fail when the move
//! and the requests did not meet.

use crate::cluster::{cluster_of, node_settings, owner_of, wait_balanced};
use crate::cluster_procs::{check_acknowledged, flood};
use crate::helpers::*;
use registrar::config::Settings;
use registrar::faults;
use registrar::resources::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// An operator account on `app`'s database; its token.
async fn operator(app: &TestApp) -> String {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO students (id, username, password_hash, role) VALUES ($1, $2, $3, 'operator')",
    )
    .bind(id)
    .bind(format!("op{}", id.simple()))
    .bind(&*DEMO_HASH)
    .execute(&app.pool)
    .await
    .unwrap();
    app.token(id, Role::Operator)
}

/// Ask for a move of `section`'s shard to another node; the move's id.
async fn move_section(app: &TestApp, op: &str, section: Uuid, nodes: &[TestApp]) -> (i64, String) {
    let place = app
        .get_json(&format!("/api/v1/cluster/sections/{section}"), Some(op))
        .await;
    let (shard, from) = (
        place["shard"].as_u64().unwrap(),
        place["node_id"].as_str().unwrap(),
    );
    let to = nodes
        .iter()
        .map(|n| n.settings.cluster.node_id.clone())
        .find(|id| id != from)
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/cluster/shards/{shard}/move"),
            Some(op),
            json!({"to": to}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["from"], from);
    assert_eq!(started["to"], to.as_str());
    (started["id"].as_i64().unwrap(), to)
}

/// `n` in-process nodes on one fresh database, started one after another, named
/// `<tag>-1`... with a tag of this test's own, so a failpoint keyed by node id strikes
/// only here; `adjust` tunes each node's settings.
async fn cluster_named(n: usize, shards: u32, adjust: impl Fn(&mut Settings)) -> Vec<TestApp> {
    let database = fresh_database().await;
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let mut nodes = Vec::new();
    for i in 1..=n {
        let mut s = node_settings(&database, &format!("n{tag}-{i}"), shards);
        adjust(&mut s);
        nodes.push(TestApp::start(s).await);
    }
    nodes
}

/// The tests of this process that set `handoff-hold`, one at a time (a failpoint has one
/// action per process).
static HOLDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This test's use of the `handoff-hold` failpoint; turned off when dropped, however the
/// test ends.
struct HandoffHold {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    node: std::sync::Mutex<String>,
}

impl HandoffHold {
    /// Wait for this test's turn at the failpoint (off until [`HandoffHold::hold`]).
    async fn take() -> HandoffHold {
        HandoffHold {
            _turn: HOLDS.lock().await,
            node: Default::default(),
        }
    }

    /// Hold `node`'s handoffs until [`HandoffHold::release`].
    fn hold(&self, node: &str) {
        faults::set("handoff-hold", &format!("return({node})")).expect("failpoint");
        *self.node.lock().unwrap() = node.to_string();
    }

    /// Let the held handoffs go on.
    fn release(&self) {
        faults::clear("handoff-hold");
    }

    /// Handoffs held at the failpoint now.
    fn holding(&self) -> usize {
        faults::holding("handoff-hold", &*self.node.lock().unwrap())
    }
}

impl Drop for HandoffHold {
    fn drop(&mut self) {
        faults::clear("handoff-hold");
    }
}

/// Wait for move `id` to finish; its record.
async fn finished(app: &TestApp, op: &str, id: i64) -> Value {
    let mut last = Value::Null;
    wait_until("the move finished", async || {
        last = app
            .get_json(&format!("/api/v1/cluster/moves/{id}"), Some(op))
            .await;
        last["state"] == "done" || last["state"] == "failed"
    })
    .await;
    last
}

#[tokio::test]
async fn moving_the_hot_sections_shard_during_a_flood_fails_no_request() {
    let nodes = cluster_named(3, 16, |_| {}).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let op = operator(a).await;
    let (_, section) = a.open_cs101(100, 50, json!([])).await;
    let from = owner_of(a, section).await;
    let hold = HandoffHold::take().await;
    let students = a.students(300, &[]).await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // One enroll of student `i`, sent after `delay_ms`.
    let send = |i: usize, delay_ms: u64| {
        let node = &nodes[i % 3];
        let token = students[i].1.clone();
        let (client, url) = (node.client.clone(), node.url(&path));
        let (sent, answered) = (sent.clone(), answered.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let r = r.expect("no transport failure");
            (r.status(), r.json::<Value>().await.unwrap())
        })
    };
    // The last fifty are sent once the handoff holds, so some requests surely meet it.
    let late = students.len() - 50;
    let mut calls: Vec<_> = (0..late).map(|i| send(i, (i as u64 % 100) * 5)).collect();
    // Part of the flood is decided before the move; the move's handoff then holds with
    // the shard's gates closed until requests for the section are stuck behind them.
    tokio::time::sleep(Duration::from_millis(150)).await;
    hold.hold(&from);
    let (id, to) = move_section(a, &op, section, &nodes).await;
    wait_until("the handoff held with the gates closed", async || {
        hold.holding() == 1
    })
    .await;
    calls.extend((late..students.len()).map(|i| send(i, 0)));
    // The rest of the flood is sent while the handoff holds: none of it can be decided
    // before the gates open, so it waits at them (asserted below by the held count).
    wait_until("the flood sent while the handoff holds", async || {
        sent.load(std::sync::atomic::Ordering::SeqCst) == students.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hold.holding(), 1, "the handoff held through the flood");
    // Requests waited across the handoff: sent before it let go, answered after.
    let waiting = students.len() - answered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(waiting > 0, "no request waited for the move");
    hold.release();
    let record = finished(a, &op, id).await;
    assert_eq!(record["state"], "done", "{record}");
    assert_eq!(owner_of(a, section).await, to);
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut positions = Vec::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        *by_status.entry(status.as_u16()).or_default() += 1;
        assert!(
            matches!(status.as_u16(), 201 | 202 | 409),
            "a request failed during the move: {status} {body}"
        );
        if status == StatusCode::ACCEPTED {
            positions.push(body["position"].as_u64().unwrap());
        }
    }
    assert_eq!(by_status.get(&201), Some(&100), "{by_status:?}");
    assert_eq!(by_status.get(&202), Some(&50), "{by_status:?}");
    positions.sort();
    assert_eq!(positions, (1..=50).collect::<Vec<u64>>(), "FIFO positions");
    let violations = registrar::verify::violations(&a.pool).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    eprintln!("move during a flood: {record}");
    drop(hold);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn ten_moves_back_and_forth_under_churn_fail_no_request() {
    let nodes = cluster_named(3, 16, |_| {}).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let op = operator(a).await;
    let (_, section) = a.open_cs101(20, 20, json!([])).await;
    let students = a.students(60, &[]).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut churners = Vec::new();
    let urls: Vec<(reqwest::Client, String)> = nodes
        .iter()
        .map(|n| (n.client.clone(), n.address.clone()))
        .collect();
    for (i, (_, token)) in students.iter().enumerate() {
        let (stop, token, urls) = (stop.clone(), token.clone(), urls.clone());
        churners.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (client, base) = &urls[(i + round) % urls.len()];
                let url = format!("{base}/api/v1/sections/{section}/enrollments");
                let enrolled = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({}))
                    .send()
                    .await;
                let (client, base) = &urls[(i + round + 1) % urls.len()];
                let url = format!("{base}/api/v1/sections/{section}/enrollments/me");
                let dropped = client.delete(&url).bearer_auth(&token).send().await;
                for r in [enrolled, dropped] {
                    match r {
                        Ok(r) if r.status().is_server_error() => failures.push(format!(
                            "{} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        )),
                        Ok(_) => {}
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                round += 1;
            }
            failures
        }));
    }
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (id, _) = move_section(a, &op, section, &nodes).await;
        let record = finished(a, &op, id).await;
        assert_eq!(record["state"], "done", "{record}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failures = Vec::new();
    for churner in churners {
        failures.extend(churner.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let violations = registrar::verify::violations(&a.pool).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let moves = a
        .get_json("/api/v1/cluster/moves?limit=1000", Some(&op))
        .await;
    let by_operator = moves
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["reason"] == "operator" && m["state"] == "done")
        .count();
    assert_eq!(by_operator, 10);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn draining_a_node_under_load_moves_all_its_shards_and_fails_no_request() {
    let nodes = cluster_of(3, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let op = operator(a).await;
    let term = a.open_term().await;
    a.course("CS101", 3, &[]).await;
    let mut sections = Vec::new();
    for i in 0..8 {
        sections.push(
            a.section(term, "CS101", &format!("D{i}"), 1_000, 0, json!([]))
                .await,
        );
    }
    let students = a.students(240, &[]).await;
    let mut calls = Vec::new();
    for (i, (_, token)) in students.iter().enumerate() {
        // Through the two nodes that stay (the drained one stops being ready).
        let node = &nodes[i % 2];
        let (client, url, token) = (
            node.client.clone(),
            node.url(&format!("/api/v1/sections/{}/enrollments", sections[i % 8])),
            token.clone(),
        );
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 % 120) * 5)).await;
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = a
        .post("/api/v1/cluster/nodes/node-3/drain", Some(&op), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_until("node-3 left with no shard", async || {
        let view = a.get_json("/api/v1/cluster", Some(&op)).await;
        view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == "node-3" && n["state"] == "left" && n["shards_owned"] == 0)
    })
    .await;
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "a request failed during the drain: {body}"
        );
    }
    let violations = registrar::verify::violations(&a.pool).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let moves = a
        .get_json("/api/v1/cluster/moves?limit=1000", Some(&op))
        .await;
    assert!(
        moves
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["reason"] == "drain" && m["from"] == "node-3"),
        "the drain's moves are recorded as such"
    );
    wait_until("the drained node is not ready", async || {
        nodes[2].get("/readyz", None).await.status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn bad_operator_requests_get_their_codes() {
    let nodes = cluster_of(2, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 2, 16).await;
    let op = operator(a).await;
    let (_, student) = a.student().await;
    let mv = |shard: &str| format!("/api/v1/cluster/shards/{shard}/move");
    let owner_of_0 = a.get_json("/api/v1/cluster/shards", Some(&op)).await[0]["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = if owner_of_0 == "node-1" {
        "node-2"
    } else {
        "node-1"
    };
    let cases: Vec<(String, Option<&str>, Value, StatusCode, &str)> = vec![
        (
            mv("0"),
            Some(&student),
            json!({"to": other}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            mv("0"),
            Some(&a.admin_token),
            json!({"to": other}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            mv("0"),
            None,
            json!({"to": other}),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            mv("x"),
            Some(&op),
            json!({"to": other}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            mv("16"),
            Some(&op),
            json!({"to": other}),
            StatusCode::NOT_FOUND,
            "shard_not_found",
        ),
        (
            mv("0"),
            Some(&op),
            json!({"to": "nobody"}),
            StatusCode::NOT_FOUND,
            "node_not_found",
        ),
        (
            mv("0"),
            Some(&op),
            json!({"to": owner_of_0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            mv("0"),
            Some(&op),
            json!({}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "/api/v1/cluster/nodes/nobody/drain".into(),
            Some(&op),
            json!({}),
            StatusCode::NOT_FOUND,
            "node_not_found",
        ),
        (
            "/api/v1/cluster/rebalance".into(),
            Some(&op),
            json!({"by": "mood"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ];
    for (path, token, body, status, code) in cases {
        let r = a.post(&path, token, body.clone()).await;
        expect_problem(&format!("POST {path} {body}"), r, status, code).await;
    }
    let r = a.get("/api/v1/cluster/moves/12345", Some(&op)).await;
    expect_problem("unknown move", r, StatusCode::NOT_FOUND, "move_not_found").await;
    let r = a.get("/api/v1/cluster/moves?limit=0", Some(&op)).await;
    expect_problem("limit 0", r, StatusCode::BAD_REQUEST, "invalid_query").await;

    // Two moves of one shard in a row: the second finds the first in progress (409
    // shard_moving) or already done (422: the target owns it).
    let first = a.post(&mv("0"), Some(&op), json!({"to": other})).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let second = a.post(&mv("0"), Some(&op), json!({"to": other})).await;
    // Either the first is still running (409 shard_moving) or it is done and `other`
    // owns the shard now (422: already there). Never a second move of the shard at once.
    let (status, body) = answer(second).await;
    let history = a
        .get_json("/api/v1/cluster/moves?limit=20", Some(&op))
        .await;
    assert!(
        (status == StatusCode::CONFLICT && body["code"] == "shard_moving")
            || (status == StatusCode::UNPROCESSABLE_ENTITY && body["code"] == "invalid_field"),
        "{status} {body}; moves: {history}"
    );
    // The last active node cannot be drained: nobody would take its shards.
    let r = a
        .post(
            &format!("/api/v1/cluster/nodes/{other}/drain"),
            Some(&op),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_until("the drained node left", async || {
        let view = a.get_json("/api/v1/cluster", Some(&op)).await;
        view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == other && n["state"] == "left")
    })
    .await;
    let r = a
        .post(
            &format!("/api/v1/cluster/nodes/{owner_of_0}/drain"),
            Some(&op),
            json!({}),
        )
        .await;
    expect_problem(
        "drain the last node",
        r,
        StatusCode::CONFLICT,
        "no_active_node",
    )
    .await;
    // A departed node is not a target, and cannot be drained again.
    let r = a.post(&mv("0"), Some(&op), json!({"to": other})).await;
    expect_problem(
        "move to a departed node",
        r,
        StatusCode::CONFLICT,
        "node_not_active",
    )
    .await;
    let r = a
        .post(
            &format!("/api/v1/cluster/nodes/{other}/drain"),
            Some(&op),
            json!({}),
        )
        .await;
    expect_problem(
        "drain a departed node",
        r,
        StatusCode::CONFLICT,
        "node_not_active",
    )
    .await;
    // Rebalancing a balanced cluster asks for no move.
    let r = a
        .post(
            "/api/v1/cluster/rebalance",
            Some(&op),
            json!({"by": "load"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for node in nodes {
        node.stop().await;
    }
}

/// The owner of `shard` and its epoch, from the database.
async fn owner_row(pool: &sqlx::PgPool, shard: i32) -> (Option<String>, i64) {
    sqlx::query_as("SELECT node_id, epoch FROM shard_owners WHERE shard = $1")
        .bind(shard)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A move ends once: one failed (by the coordinator giving up on it, or by the sweep of
/// moves stranded by a node that left) stays failed when the old owner's handoff
/// transaction commits late, and the shard stays where the record says it is.
#[tokio::test]
async fn a_failed_move_stays_failed_and_its_shard_stays_put() {
    use registrar::store::cluster as rows;
    let database = fresh_database().await;
    let pool = sqlx::PgPool::connect(&test_settings(&database).database.database_url)
        .await
        .unwrap();
    rows::ensure_cluster(&pool, 4).await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for (node, incarnation) in [("node-a", a), ("node-b", b)] {
        // A lease of 0: no live process holds these ids.
        assert!(
            rows::register(&pool, node, incarnation, "http://127.0.0.1:9", 0)
                .await
                .unwrap()
        );
        assert!(
            rows::set_state(
                &pool,
                node,
                incarnation,
                &[rows::NodeState::Joining],
                rows::NodeState::Active
            )
            .await
            .unwrap()
        );
    }
    sqlx::query("UPDATE shard_owners SET node_id = 'node-a', epoch = 1, state = 'active'")
        .execute(&pool)
        .await
        .unwrap();
    let start = async |shard: u32| {
        let moves = [(shard, "node-a".to_string(), "node-b".to_string())];
        let started = rows::start_moves(&pool, &moves, rows::MoveReason::Operator, "test")
            .await
            .unwrap();
        assert_eq!(started.len(), 1);
        started[0].1
    };

    // The coordinator gave up on the move (its ask timed out) while the owner went on.
    let id = start(0).await;
    rows::fail_moves(&pool, &[id], "the handoff timed out")
        .await
        .unwrap();
    let moved = rows::hand_over(&pool, "node-a", a, "node-b", 60_000, &[(0, id, 0)])
        .await
        .unwrap();
    let record = rows::move_by_id(&pool, id).await.unwrap().unwrap();
    assert_eq!(
        (record.state.as_str(), moved),
        ("failed", vec![]),
        "{record:?}"
    );
    assert_eq!(record.error.as_deref(), Some("the handoff timed out"));
    assert_eq!(owner_row(&pool, 0).await, (Some("node-a".into()), 1));

    // The target died, the sweep failed the move, and the target came back (a new
    // incarnation) before the old owner's transaction ran.
    let id = start(1).await;
    assert!(
        rows::set_state(
            &pool,
            "node-b",
            b,
            &[rows::NodeState::Active],
            rows::NodeState::Dead
        )
        .await
        .unwrap()
    );
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(rows::fail_stranded_moves(&mut tx).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let b2 = Uuid::new_v4();
    assert!(
        rows::register(&pool, "node-b", b2, "http://127.0.0.1:9", 0)
            .await
            .unwrap()
    );
    assert!(
        rows::set_state(
            &pool,
            "node-b",
            b2,
            &[rows::NodeState::Joining],
            rows::NodeState::Active
        )
        .await
        .unwrap()
    );
    let moved = rows::hand_over(&pool, "node-a", a, "node-b", 60_000, &[(1, id, 3)])
        .await
        .unwrap();
    let record = rows::move_by_id(&pool, id).await.unwrap().unwrap();
    assert_eq!(
        (record.state.as_str(), moved),
        ("failed", vec![]),
        "{record:?}"
    );
    assert_eq!(owner_row(&pool, 1).await, (Some("node-a".into()), 1));

    // An open move still goes through, and its record says so.
    let id = start(2).await;
    let moved = rows::hand_over(&pool, "node-a", a, "node-b", 60_000, &[(2, id, 0)])
        .await
        .unwrap();
    assert_eq!(moved, vec![2]);
    assert_eq!(
        rows::move_by_id(&pool, id).await.unwrap().unwrap().state,
        rows::MoveState::Done
    );
    assert_eq!(owner_row(&pool, 2).await, (Some("node-b".into()), 2));
    pool.close().await;
}

/// Ask `via` to move `shard` to `to`; the move's id.
async fn ask_move(via: &TestApp, op: &str, shard: u64, to: &str) -> i64 {
    let r = via
        .post(
            &format!("/api/v1/cluster/shards/{shard}/move"),
            Some(op),
            json!({"to": to}),
        )
        .await;
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_i64().unwrap()
}

/// Move `id`'s (state, error), from the database.
async fn move_state(pool: &sqlx::PgPool, id: i64) -> (String, Option<String>) {
    sqlx::query_as("SELECT state, error FROM shard_moves WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Finding 7: two handoffs of one shard overlap on its owner. The first is held with the
/// shard's gates closed; the node that asked for it gives up (its ask over the internal hop
/// times out) and ends the move, so the shard may be asked to move again while the first
/// handoff still runs. The owner's second handoff must wait for the first: still held past
/// the second's deadline, the second is refused; a third, asked as the first is let go,
/// waits for it and then moves the shard. One owner throughout, its epoch bumped once,
/// every acknowledged enroll kept.
#[tokio::test]
async fn a_second_handoff_of_a_shard_waits_for_the_first_on_its_owner() {
    let nodes = cluster_named(3, 16, |s| s.cluster.handoff_timeout_ms = 1_500).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let op = operator(a).await;
    let (_, section) = a.open_cs101(20, 10, json!([])).await;
    let place = a
        .get_json(&format!("/api/v1/cluster/sections/{section}"), Some(&op))
        .await;
    let shard = place["shard"].as_u64().unwrap();
    let from = place["node_id"].as_str().unwrap().to_string();
    let id_of = |n: &TestApp| n.settings.cluster.node_id.clone();
    let owner = nodes.iter().find(|n| id_of(n) == from).unwrap();
    let others: Vec<&TestApp> = nodes.iter().filter(|n| id_of(n) != from).collect();
    let (_, epoch) = owner_row(&a.pool, shard as i32).await;

    let hold = HandoffHold::take().await;
    hold.hold(&from);
    // The first move, asked of another node: it asks the owner over the internal hop.
    let first = ask_move(others[0], &op, shard, &id_of(others[0])).await;
    wait_until("the first handoff held with the gates closed", async || {
        hold.holding() == 1
    })
    .await;
    let students = a.students(45, &[]).await;
    let urls = others.iter().map(|n| n.address.clone()).collect();
    let calls = flood(a, urls, &students, section).await;
    // The asker's patience (handoff timeout + lease) runs out: it ends the move as failed.
    wait_until("the asker gave up on the first move", async || {
        move_state(&a.pool, first).await.0 == "failed"
    })
    .await;
    assert_eq!(
        hold.holding(),
        1,
        "the first handoff is still under way on the owner"
    );

    // A second move of the shard, asked of the owner: its handoff must not run beside the
    // first; the first stays held past the second's deadline, so the second is refused.
    let second = ask_move(owner, &op, shard, &id_of(others[1])).await;
    let mut state = (String::new(), None);
    wait_until("the second move ended", async || {
        let beside = hold.holding();
        assert!(
            beside <= 1,
            "{beside} handoffs of shard {shard} at once on its owner"
        );
        state = move_state(&a.pool, second).await;
        state.0 != "running"
    })
    .await;
    eprintln!("second handoff of shard {shard} while the first was held: {state:?}");
    assert_eq!(state.0, "failed", "{state:?}");
    assert!(
        state
            .1
            .as_deref()
            .is_some_and(|e| e.contains("another handoff of the shard")),
        "{state:?}"
    );
    assert_eq!(hold.holding(), 1, "the first handoff held on");
    assert_eq!(
        owner_row(&a.pool, shard as i32).await,
        (Some(from.clone()), epoch)
    );

    // A third, asked while the first still holds; the first is let go, ends (its move was
    // given up, so the shard stays), and the third goes through after it.
    let third = ask_move(owner, &op, shard, &id_of(others[1])).await;
    hold.release();
    let record = finished(a, &op, third).await;
    assert_eq!(record["state"], "done", "{record}");
    assert_eq!(
        owner_row(&a.pool, shard as i32).await,
        (Some(id_of(others[1])), epoch + 1),
        "one owner, its epoch bumped once"
    );
    assert_eq!(move_state(&a.pool, first).await.0, "failed");
    assert_eq!(move_state(&a.pool, second).await.0, "failed");
    // Of this shard: the coordinator may be rebalancing others at any moment.
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM shard_moves WHERE shard = $1 AND state IN ('pending', 'running')",
    )
    .bind(shard as i32)
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "no move left open");
    drop(hold);

    let mut answers = Vec::new();
    for call in calls {
        answers.extend(call.await.unwrap());
    }
    let acknowledged = check_acknowledged(a, section, &answers).await;
    assert_eq!(acknowledged, 30, "{answers:?}");
    for node in nodes {
        node.stop().await;
    }
}

/// (student, status, offer end, why skipped) of a section's active row.
type PlaceRow = (
    Uuid,
    String,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
);

/// An offer-mode section's state moves with its shard: a seat offered (with its end) and a
/// waiting student skipped for a hold are the same on the new owner, which then takes the
/// offer's acceptance and lets the skipped student back in line.
#[tokio::test]
async fn an_offer_and_a_skipped_student_move_with_their_shard() {
    let nodes = cluster_named(2, 8, |_| {}).await;
    let a = &nodes[0];
    let op = operator(a).await;
    let term = a.open_term().await;
    a.course("CS101", 3, &[]).await;
    let s = a
        .admin_post(
            "/api/v1/sections",
            json!({"term_id": term, "course_code": "CS101", "section_code": "01",
                   "capacity": 1, "waitlist_capacity": 5, "waitlist_mode": "offer",
                   "offer_window_minutes": 60}),
        )
        .await;
    let section: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let students = a.students(3, &[]).await;
    let (first, skipped, offered) = (&students[0], &students[1], &students[2]);
    assert_eq!(a.enroll(&first.1, section).await.0, StatusCode::CREATED);
    for w in [skipped, offered] {
        assert_eq!(a.enroll(&w.1, section).await.0, StatusCode::ACCEPTED);
    }
    let hold = a
        .admin_post(
            &format!("/api/v1/students/{}/holds", skipped.0),
            json!({"reason": "fees"}),
        )
        .await;
    assert_eq!(a.drop_section(&first.1, section).await.0, StatusCode::OK);
    let rows = async || -> Vec<PlaceRow> {
        sqlx::query_as(
            "SELECT student_id, status, offer_expires_at, blocked_reason FROM enrollments
              WHERE section_id = $1 AND status <> 'dropped' ORDER BY student_id",
        )
        .bind(section)
        .fetch_all(&a.pool)
        .await
        .unwrap()
    };
    let before = rows().await;
    let find = |rows: &[PlaceRow], s: Uuid| rows.iter().find(|r| r.0 == s).cloned().unwrap();
    assert_eq!(
        find(&before, offered.0).1,
        "offered",
        "the skipped head was passed over"
    );
    assert_eq!(
        find(&before, skipped.0).3.as_deref(),
        Some("student_on_hold")
    );

    let (id, to) = move_section(a, &op, section, &nodes).await;
    assert_eq!(finished(a, &op, id).await["state"], "done");
    assert_eq!(owner_of(a, section).await, to);
    assert_eq!(rows().await, before, "the rows are as they were");

    // The new owner takes the acceptance (through the node the student talks to)...
    let path = format!("/api/v1/sections/{section}/enrollments/me/accept");
    let (status, body) = answer(a.post(&path, Some(&offered.1), json!({})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // ...and lets the skipped student back in line when the hold is lifted.
    let lift = format!(
        "/api/v1/students/{}/holds/{}",
        skipped.0,
        hold["id"].as_str().unwrap()
    );
    let r = a.request(reqwest::Method::DELETE, &lift, Some(&a.admin_token));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(find(&rows().await, skipped.0).3, None);
    verified(a).await;
}
