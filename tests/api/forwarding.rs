//! Forwarding a student's request to the student's home node, under faults: hop headers a
//! client made up change nothing (only a node, proven by the internal key, says how far
//! a request came).

use crate::cluster::{cluster_of, owner_of, wait_balanced};
use crate::helpers::*;
use registrar::cluster::shard_of;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

/// `n` students whose shard `node` owns (and whose requests other nodes forward there).
async fn students_at_home_on(app: &TestApp, node: &str, n: usize) -> Vec<(Uuid, String)> {
    let shards = app.settings.cluster.shards;
    let owned: Vec<i32> = sqlx::query_scalar("SELECT shard FROM shard_owners WHERE node_id = $1")
        .bind(node)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let mut found = Vec::new();
    while found.len() < n {
        for student in app.students(8, &[]).await {
            if owned.contains(&(shard_of(student.0, shards) as i32)) {
                found.push(student);
            }
        }
    }
    found.truncate(n);
    found
}

#[tokio::test]
async fn a_clients_hop_headers_are_ignored_and_its_request_served_at_home() {
    let nodes = cluster_of(2, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 2, 16).await;
    let (_, section) = a.open_cs101(10, 0, json!([])).await;
    let owner = owner_of(a, section).await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    // Homed on node-2, sent to node-1: node-1 must forward them.
    let students = students_at_home_on(a, "node-2", 3).await;
    let forged = ["4294967295", "3", "18446744073709551616"];
    for ((_, token), hops) in students.iter().zip(forged) {
        let r = a
            .request(Method::POST, &path, Some(token))
            .header("x-registrar-hops", hops)
            .header("x-registrar-forwarded-by", "node-9")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let decider = r.headers().get("x-registrar-node").cloned();
        let (status, body) = answer(r).await;
        assert_eq!(status, StatusCode::CREATED, "hops {hops}: {body}");
        assert_eq!(body["status"], "enrolled", "hops {hops}: {body}");
        assert_eq!(decider.unwrap().to_str().unwrap(), owner, "hops {hops}");
    }
    assert!(metric(a, "registrar_cluster_forwarded_total").await >= 3);
    for node in nodes {
        node.stop().await;
    }
}
