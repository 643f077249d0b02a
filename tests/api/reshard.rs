//! Operators move shards during the peak: a move of the hot section's shard in the middle
//! of a flood, ten moves back and forth under enroll/drop churn, a drain under load, each
//! with zero failed requests (no 5xx, no timeout) and a clean database; and every bad
//! operator request gets its code.

use crate::cluster::{cluster_of, owner_of, wait_balanced};
use crate::helpers::*;
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
    let nodes = cluster_of(3, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let op = operator(a).await;
    let (_, section) = a.open_cs101(100, 50, json!([])).await;
    let students = a.students(300, &[]).await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    let mut calls = Vec::new();
    for (i, (_, token)) in students.iter().enumerate() {
        let node = &nodes[i % 3];
        let (client, url, token) = (node.client.clone(), node.url(&path), token.clone());
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 % 100) * 5)).await;
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await;
            let r = r.expect("no transport failure");
            (r.status(), r.json::<Value>().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (id, to) = move_section(a, &op, section, &nodes).await;
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
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn ten_moves_back_and_forth_under_churn_fail_no_request() {
    let nodes = cluster_of(3, 16).await;
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
