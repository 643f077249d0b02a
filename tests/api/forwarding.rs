//! Forwarding a student's request to the student's home node, under faults: hop headers a
//! client made up change nothing (only a node, proven by the internal key, says how far
//! a request came), and a request that may have reached the home node before the link
//! broke is not sent again unless a retry is safe (an `Idempotency-Key`, or a read). A
//! student's sign-in and answers name its home node, and a client sending its requests
//! there is served without a forward.

use crate::cluster::{cluster_of, node_settings, owner_of, wait_balanced};
use crate::helpers::*;
use registrar::cluster::shard_of;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

#[tokio::test]
async fn a_student_is_told_its_home_and_a_client_going_there_is_not_forwarded() {
    let nodes = cluster_of(2, 16).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    wait_balanced(a, 2, 16).await;
    let (_, section) = a.open_cs101(10, 0, json!([])).await;
    let (student, token) = students_at_home_on(a, "node-2", 1).await.remove(0);
    let home = |r: &reqwest::Response| {
        r.headers()
            .get("x-registrar-home")
            .map(|v| v.to_str().unwrap().to_string())
    };
    // Signing in on node-1 names node-2, the student's home.
    let login = json!({"username": format!("u{}", student.simple()), "password": "password1"});
    let r = a.post("/api/v1/auth/login", None, login).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(home(&r).as_deref(), Some(b.address.as_str()), "sign-in");
    // A request sent to node-1 is forwarded, and its answer names the home too.
    let forwarded = "registrar_cluster_forwarded_total";
    let before = (metric(a, forwarded).await, metric(b, forwarded).await);
    let r = a.get("/api/v1/students/me/schedule", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(home(&r).as_deref(), Some(b.address.as_str()), "forwarded");
    assert_eq!(metric(a, forwarded).await, before.0 + 1);
    // Sent where the hint says, it is served there and forwarded by no node.
    let path = format!("/api/v1/sections/{section}/enrollments");
    let r = b.post(&path, Some(&token), json!({})).await;
    assert_eq!(home(&r).as_deref(), Some(b.address.as_str()), "at home");
    assert_eq!(answer(r).await.0, StatusCode::CREATED);
    assert_eq!(metric(a, forwarded).await, before.0 + 1);
    assert_eq!(metric(b, forwarded).await, before.1);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn home_hints_can_be_turned_off() {
    for hints in [true, false] {
        let app = TestApp::spawn_with(|s| s.cluster.home_hints = hints).await;
        let (_, section) = app.open_cs101(10, 0, json!([])).await;
        let (student, token) = app.student().await;
        let login = json!({"username": format!("u{}", student.simple()), "password": "password1"});
        let r = app.post("/api/v1/auth/login", None, login).await;
        assert_eq!(r.status(), StatusCode::OK);
        let named = r.headers().get("x-registrar-home").cloned();
        let path = format!("/api/v1/sections/{section}/enrollments");
        let r = app.post(&path, Some(&token), json!({})).await;
        let named_too = r.headers().get("x-registrar-home").cloned();
        assert_eq!(answer(r).await.0, StatusCode::CREATED);
        let expected = hints.then(|| app.address.clone());
        for (what, header) in [("sign-in", named), ("enroll", named_too)] {
            let header = header.map(|v| v.to_str().unwrap().to_string());
            assert_eq!(header, expected, "{what}, hints {hints}");
        }
        app.stop().await;
    }
}

/// How a stand-in home node talks.
#[derive(Clone, Copy, Debug)]
enum Speaks {
    /// The binary wire (the hop between today's nodes).
    Wire,
    /// HTTP/2 only: it answers the wire's upgrade 404, as an older node does.
    Http2,
}

/// A stand-in home node that reads each request and hangs up without answering: the
/// request reached it, its answer never came back.
struct LostHome {
    address: String,
    /// Requests that reached it.
    requests: Arc<AtomicUsize>,
}

impl LostHome {
    async fn start(speaks: Speaks) -> LostHome {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    if read_one_request(socket, speaks).await {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        LostHome { address, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Read one connection until a forwarded request arrives, then close; whether one did.
async fn read_one_request(mut socket: TcpStream, speaks: Speaks) -> bool {
    let mut first = [0u8; 3];
    if socket.peek(&mut first).await.is_err() {
        return false;
    }
    match (&first, speaks) {
        (b"GET", Speaks::Wire) => read_one_wire_call(socket).await,
        (b"GET", Speaks::Http2) => {
            // The wire's upgrade, refused as a node without it refuses it.
            let _ = read_http1_head(&mut socket).await;
            let _ = socket
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
            false
        }
        (b"PRI", _) => read_one_http2_request(socket).await,
        _ => false,
    }
}

/// An HTTP/1.1 request's head.
async fn read_http1_head(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.ok()?;
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// Accept the wire's upgrade, then read frames until a forwarded request's.
async fn read_one_wire_call(mut socket: TcpStream) -> bool {
    let Some(head) = read_http1_head(&mut socket).await else {
        return false;
    };
    assert!(head.contains("/internal/v1/wire"), "{head}");
    let accepted = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
                     upgrade: registrar-wire\r\nx-registrar-wire: 1\r\n\r\n";
    if socket.write_all(accepted).await.is_err() {
        return false;
    }
    loop {
        let mut len = [0u8; 4];
        if socket.read_exact(&mut len).await.is_err() {
            return false;
        }
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        if socket.read_exact(&mut frame).await.is_err() {
            return false;
        }
        // [version][kind]...: kind 3 is a forwarded request (pings are read past).
        const FORWARD: u8 = 3;
        if frame.get(1) == Some(&FORWARD) {
            return true;
        }
    }
}

/// Speak HTTP/2 (prior knowledge) until a request's HEADERS frame arrives, then close;
/// whether one arrived.
async fn read_one_http2_request(mut socket: TcpStream) -> bool {
    // The server's preface: an empty SETTINGS frame.
    if socket
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .is_err()
    {
        return false;
    }
    let mut preface = [0u8; 24];
    if socket.read_exact(&mut preface).await.is_err() {
        return false;
    }
    loop {
        let mut head = [0u8; 9];
        if socket.read_exact(&mut head).await.is_err() {
            return false;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        if socket.read_exact(&mut payload).await.is_err() {
            return false;
        }
        const HEADERS: u8 = 0x1;
        if head[3] == HEADERS {
            return true;
        }
    }
}

/// Over the wire, and over HTTP to a node that does not speak it.
#[tokio::test]
async fn a_forward_lost_after_sending_is_not_resent_without_an_idempotency_key() {
    for speaks in [Speaks::Wire, Speaks::Http2] {
        a_forward_lost_after_sending(speaks).await;
    }
}

async fn a_forward_lost_after_sending(speaks: Speaks) {
    let database = fresh_database().await;
    let mut settings = node_settings(&database, "node-1", 16);
    settings.cluster.auto_rebalance = false;
    settings.sections.call_timeout_ms = 2_000;
    let app = TestApp::start(settings).await;
    wait_until("node-1 owns every shard", async || {
        crate::cluster::owned(&app).await.get("node-1") == Some(&16)
    })
    .await;
    // A second member, with a live lease, whose process loses every answer.
    let home = LostHome::start(speaks).await;
    sqlx::query(
        "INSERT INTO cluster_nodes (id, address, incarnation, state, started_at, heartbeat_at)
         VALUES ('ghost', $1, $2, 'active', now(), now())",
    )
    .bind(&home.address)
    .bind(Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap();
    let pool = app.pool.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            let _ = sqlx::query("UPDATE cluster_nodes SET heartbeat_at = now() WHERE id = 'ghost'")
                .execute(&pool)
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let students = app.students(2, &[]).await;
    let shards: Vec<i32> = students
        .iter()
        .map(|(id, _)| shard_of(*id, 16) as i32)
        .collect();
    sqlx::query(
        "UPDATE shard_owners SET node_id = 'ghost', epoch = epoch + 1 WHERE shard = ANY($1)",
    )
    .bind(&shards)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('registrar_cluster', 'map')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut distinct = shards.clone();
    distinct.sort();
    distinct.dedup();
    let left = 16 - distinct.len() as u64;
    wait_until("node-1's map shows the ghost's shards", async || {
        let ready = app.get_json("/readyz", None).await;
        ready["shards_owned"].as_u64() == Some(left)
    })
    .await;
    let path = format!("/api/v1/sections/{}/enrollments", Uuid::new_v4());

    // No key: the home may have recorded it; sent once, and the answer says so.
    let r = app.post(&path, Some(&students[0].1), json!({})).await;
    let body: Value = expect_problem(
        "enroll without a key",
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    )
    .await;
    assert_eq!(
        home.requests(),
        1,
        "{speaks:?}: sent again after it was lost: {body}"
    );

    // With a key a retry is safe: it is sent again until the call timeout.
    let before = home.requests();
    let r = app
        .request(Method::POST, &path, Some(&students[1].1))
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(
        "enroll with a key",
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert!(
        home.requests() > before + 1,
        "{speaks:?}: {} requests",
        home.requests()
    );

    heartbeat.abort();
    app.stop().await;
}

/// A hold put on (and lifted from) a student through one node reaches the rule cache of
/// the student's home node: the edit and its notice commit together.
#[tokio::test]
async fn a_hold_put_through_one_node_is_enforced_at_the_students_home() {
    let nodes = cluster_of(2, 16).await;
    let a = &nodes[0];
    wait_balanced(a, 2, 16).await;
    let term = a.open_term().await;
    a.course("CS101", 3, &[]).await;
    a.course("CS100", 3, &[]).await;
    let first = a.section(term, "CS101", "01", 10, 0, json!([])).await;
    let second = a.section(term, "CS100", "01", 10, 0, json!([])).await;
    let (student, token) = students_at_home_on(a, "node-2", 1).await.remove(0);
    // Through node-1, decided at home on node-2, which now caches the student's inputs.
    assert_eq!(a.enroll(&token, first).await.0, StatusCode::CREATED);
    let hold = a
        .admin_post(
            &format!("/api/v1/students/{student}/holds"),
            json!({"reason": "unpaid fees"}),
        )
        .await;
    // The notice reaches node-2 asynchronously, in milliseconds; node-2's cached inputs
    // would otherwise stay for their TTL (5 s) and let the enroll through.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, body) = a.enroll(&token, second).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "student_on_hold");
    let lift = format!(
        "/api/v1/students/{student}/holds/{}",
        hold["id"].as_str().unwrap()
    );
    let r = a.request(Method::DELETE, &lift, Some(&a.admin_token));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(a.enroll(&token, second).await.0, StatusCode::CREATED);
    for node in nodes {
        node.stop().await;
    }
}
