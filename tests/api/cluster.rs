//! The cluster with several real nodes in this process on one database: the shards are
//! shared fairly, any node serves any request, a flood spread over the nodes never
//! oversells, and one student's concurrent requests through different nodes keep the
//! student rules. (Killing and pausing nodes needs real processes: `cluster_procs`.)

use crate::helpers::*;
use registrar::config::Settings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Settings of node `id` of a test cluster on `database`: fast heartbeats, a lease a busy
/// 2-core machine still renews.
pub fn node_settings(database: &str, id: &str, shards: u32) -> Settings {
    let mut s = test_settings(database);
    s.cluster.node_id = id.into();
    s.cluster.shards = shards;
    s.cluster.heartbeat_ms = 200;
    s.cluster.lease_ms = 2_000;
    s
}

/// `n` in-process nodes on one fresh database, started one after another.
pub async fn cluster_of(n: usize, shards: u32) -> Vec<TestApp> {
    let database = fresh_database().await;
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(TestApp::start(node_settings(&database, &format!("node-{i}"), shards)).await);
    }
    nodes
}

/// Shards owned per node, from the database.
pub async fn owned(app: &TestApp) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT node_id, count(*) FROM shard_owners WHERE node_id IS NOT NULL GROUP BY node_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Wait until `nodes` nodes own every one of `shards` shards, none more than one above
/// another.
pub async fn wait_balanced(app: &TestApp, nodes: usize, shards: i64) {
    wait_until("the shards are balanced", async || {
        let owned = owned(app).await;
        let (min, max) = (owned.values().min(), owned.values().max());
        owned.len() == nodes
            && owned.values().sum::<i64>() == shards
            && matches!((min, max), (Some(a), Some(b)) if b - a <= 1)
    })
    .await;
}

/// The node owning `section`, as the operator API says.
pub async fn owner_of(app: &TestApp, section: Uuid) -> String {
    let place = app
        .get_json(
            &format!("/api/v1/cluster/sections/{section}"),
            Some(&app.admin_token),
        )
        .await;
    place["node_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn three_nodes_share_1024_shards_fairly_and_operators_see_it() {
    let nodes = cluster_of(3, 1024).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 1024).await;
    let mut counts: Vec<i64> = owned(a).await.into_values().collect();
    counts.sort();
    assert_eq!(counts, vec![341, 341, 342]);

    // Every node answers the operator read the same way, and names itself.
    for node in &nodes {
        let r = node.get("/api/v1/cluster", Some(&node.admin_token)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()["x-registrar-node"].to_str().unwrap(),
            node.settings.cluster.node_id
        );
        let view: Value = r.json().await.unwrap();
        assert_eq!(view["shards"], 1024);
        let active: Vec<&Value> = view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "active")
            .collect();
        assert_eq!(active.len(), 3, "{view}");
        let total: u64 = active
            .iter()
            .map(|n| n["shards_owned"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 1024);
    }
    let shards = a
        .get_json("/api/v1/cluster/shards?node=node-2", Some(&a.admin_token))
        .await;
    assert!((341..=342).contains(&shards.as_array().unwrap().len()));
    let r = a
        .get("/api/v1/cluster/shards?node=nobody", Some(&a.admin_token))
        .await;
    expect_problem("unknown node", r, StatusCode::NOT_FOUND, "node_not_found").await;
    // Students may not read the cluster.
    let (_, student) = a.student().await;
    let r = a.get("/api/v1/cluster", Some(&student)).await;
    expect_problem(
        "student reads the cluster",
        r,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = a
        .get("/api/v1/cluster/moves/999999", Some(&a.admin_token))
        .await;
    expect_problem("unknown move", r, StatusCode::NOT_FOUND, "move_not_found").await;

    // A node that stops hands its shards over: the other two own everything.
    let mut nodes = nodes;
    let third = nodes.pop().unwrap();
    third.stop().await;
    wait_balanced(&nodes[0], 2, 1024).await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_flood_spread_over_three_nodes_fills_the_hot_section_exactly() {
    let nodes = cluster_of(3, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let (_, section) = a.open_cs101(20, 10, json!([])).await;
    let owner = owner_of(a, section).await;
    let students = a.students(90, &[]).await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    let mut calls = Vec::new();
    for (i, (_, token)) in students.iter().enumerate() {
        let node = &nodes[i % 3];
        let (client, url, token) = (node.client.clone(), node.url(&path), token.clone());
        calls.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let decider = r.headers()["x-registrar-node"]
                .to_str()
                .unwrap()
                .to_string();
            (r.status(), decider, r.json::<Value>().await.unwrap())
        }));
    }
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut positions = Vec::new();
    for call in calls {
        let (status, decider, body) = call.await.unwrap();
        *by_status.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::CREATED || status == StatusCode::ACCEPTED {
            // The answer names the node that decided the seat: the section's owner.
            assert_eq!(decider, owner, "{body}");
        }
        if status == StatusCode::ACCEPTED {
            positions.push(body["position"].as_u64().unwrap());
        }
    }
    assert_eq!(by_status.get(&201), Some(&20), "{by_status:?}");
    assert_eq!(by_status.get(&202), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&60), "{by_status:?}");
    positions.sort();
    assert_eq!(positions, (1..=10).collect::<Vec<u64>>(), "FIFO positions");
    assert_eq!(
        a.count(
            "SELECT seats_taken::bigint FROM sections WHERE id = $1",
            section
        )
        .await,
        20
    );
    let violations = registrar::verify::violations(&a.pool).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    // Some of it crossed nodes: requests forwarded to a home node, hops to the owner.
    let mut forwarded = 0;
    let mut hops = 0;
    for node in &nodes {
        let metrics = node.get("/metrics", None).await.text().await.unwrap();
        let series = |name: &str| -> u64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        forwarded += series("registrar_cluster_forwarded_total");
        hops += series("registrar_cluster_section_hops_total");
    }
    assert!(
        forwarded > 0 && hops > 0,
        "forwarded {forwarded}, hops {hops}"
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn one_students_concurrent_enrolls_through_three_nodes_keep_the_rules() {
    let nodes = cluster_of(3, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 3, 16).await;
    let term = a.open_term().await;
    // Eight 4-credit courses at different times: the 18-credit limit admits four. Spread
    // over the nodes (the section ids fall on every node's shards).
    let mut sections = Vec::new();
    for (i, day) in ["mon", "tue", "wed", "thu", "fri", "mon", "tue", "wed"]
        .iter()
        .enumerate()
    {
        let code = format!("CR{}", 100 + i);
        a.course(&code, 4, &[]).await;
        let start = if i < 5 { "08:00" } else { "14:00" };
        let end = if i < 5 { "09:00" } else { "15:00" };
        sections.push(
            a.section(term, &code, "01", 50, 0, meet(day, start, end))
                .await,
        );
    }
    // Three sections of one course at different times: one of them at most.
    a.course("DUP200", 1, &[]).await;
    let mut dups = Vec::new();
    for (i, code) in ["A", "B", "C"].iter().enumerate() {
        let start = format!("{:02}:00", 17 + i);
        let end = format!("{:02}:30", 17 + i);
        dups.push(
            a.section(term, "DUP200", code, 50, 0, meet("sat", &start, &end))
                .await,
        );
    }
    let mut owners = std::collections::HashSet::new();
    for s in sections.iter().chain(&dups) {
        owners.insert(owner_of(a, *s).await);
    }
    assert!(
        owners.len() >= 2,
        "the sections should live on several nodes: {owners:?}"
    );

    for round in 0..3 {
        let (student, token) = a.student().await;
        let mut calls = Vec::new();
        for (i, section) in sections.iter().chain(&dups).enumerate() {
            let node = &nodes[(i + round) % 3];
            let url = node.url(&format!("/api/v1/sections/{section}/enrollments"));
            let (client, token) = (node.client.clone(), token.clone());
            calls.push(tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            }));
        }
        let mut codes: HashMap<String, usize> = HashMap::new();
        for call in calls {
            let (status, body) = call.await.unwrap();
            let code = if status.is_success() {
                "ok".to_string()
            } else {
                body["code"].as_str().unwrap().to_string()
            };
            *codes.entry(code).or_default() += 1;
        }
        let credits: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(c.credits), 0)::bigint FROM enrollments e
               JOIN sections s ON s.id = e.section_id JOIN courses c ON c.code = s.course_code
              WHERE e.student_id = $1 AND e.status <> 'dropped'",
        )
        .bind(student)
        .fetch_one(&a.pool)
        .await
        .unwrap();
        assert!(credits <= 18, "round {round}: {credits} credits, {codes:?}");
        let dup_places: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM enrollments e JOIN sections s ON s.id = e.section_id
              WHERE e.student_id = $1 AND e.status <> 'dropped' AND s.course_code = 'DUP200'",
        )
        .bind(student)
        .fetch_one(&a.pool)
        .await
        .unwrap();
        assert!(
            dup_places <= 1,
            "round {round}: {dup_places} sections of one course, {codes:?}"
        );
        // Serialized on the home node, the rules are exact, not just safe: four 4-credit
        // courses plus one DUP200 section fill 17 of the 18 credits.
        assert_eq!(credits, 17, "round {round}: {codes:?}");
        assert_eq!(codes.get("ok"), Some(&5), "round {round}: {codes:?}");
    }
    for node in nodes {
        node.stop().await;
    }
}
