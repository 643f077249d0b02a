//! The cluster when nodes die: real `registrar serve` processes next to an in-process node
//! on one database, killed with SIGKILL, paused with SIGSTOP past their lease, restarted
//! one by one under load. Students behave like careful clients (an `Idempotency-Key` on
//! every enroll, retried with the same key on 503 or a lost connection, through another
//! node), and every decision the cluster acknowledged must be in the database afterwards.

use crate::cluster::{node_settings, owner_of, wait_balanced};
use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// Shards of these clusters.
pub(crate) const SHARDS: u32 = 16;
/// Call timeout of these nodes: a hop to a paused node gives up after lease + this.
const CALL_TIMEOUT_MS: u64 = 2_000;

/// One `registrar serve` process.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) id: String,
    pub(crate) url: String,
    /// Where its log (stderr, and stdout after its address) goes.
    pub(crate) log: std::path::PathBuf,
}

impl Proc {
    /// Start node `id` on `database` (port chosen by the OS) and wait for its address.
    pub(crate) async fn start(database: &str, id: &str) -> Proc {
        Self::start_under(database, id, &[]).await
    }

    /// Like [`Proc::start`], the command run under `wrapper` (e.g. `env VAR=value`; a wrapper must exec the node, not fork it, or a kill would miss it).
    pub(crate) async fn start_under(database: &str, id: &str, wrapper: &[&str]) -> Proc {
        let (mut child, log) = Self::spawn(database, id, wrapper);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("registrar listening on ") {
                    return url.to_string();
                }
            }
            panic!("node {id} exited at start; see {}", log.display());
        })
        .await
        .expect("node printed its address");
        // The rest of its stdout (its log) goes on into the log file, where tests read it.
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .await
            .expect("node log file");
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = file.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        Proc {
            child,
            id: id.into(),
            url,
            log,
        }
    }

    /// Spawn node `id` on `database` under `wrapper` without waiting for it: the child
    /// (stdout piped) and the file its stderr goes to.
    pub(crate) fn spawn(database: &str, id: &str, wrapper: &[&str]) -> (Child, std::path::PathBuf) {
        let s = node_settings(database, id, SHARDS);
        let tag = &Uuid::new_v4().simple().to_string()[..8];
        let log = std::env::temp_dir().join(format!("{database}-{id}-{tag}.log"));
        let binary = env!("CARGO_BIN_EXE_registrar");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = command
            .arg("serve")
            .env("REGISTRAR_DATABASE_URL", &s.database.database_url)
            .env("REGISTRAR_LISTEN", "127.0.0.1:0")
            .env("REGISTRAR_NODE_ID", id)
            .env("REGISTRAR_SHARDS", SHARDS.to_string())
            .env("REGISTRAR_HEARTBEAT_MS", s.cluster.heartbeat_ms.to_string())
            .env("REGISTRAR_LEASE_MS", s.cluster.lease_ms.to_string())
            .env("REGISTRAR_CALL_TIMEOUT_MS", CALL_TIMEOUT_MS.to_string())
            .env("REGISTRAR_JWT_SECRET", &*SECRET)
            .env("REGISTRAR_REDIS_URL", &s.mirror.redis_url)
            .env("REGISTRAR_REDIS_PREFIX", &s.mirror.redis_prefix)
            .env("REGISTRAR_AMQP_URL", &s.events.amqp_url)
            .env("REGISTRAR_EVENTS_EXCHANGE", &s.events.events_exchange)
            .env("REGISTRAR_QUEUE_PREFIX", &s.events.queue_prefix)
            .env("REGISTRAR_RATE_LIMIT_PER_SEC", "0")
            .env("REGISTRAR_DB_POOL_SIZE", "8")
            .env("REGISTRAR_LOG", "warn")
            // tokio's timers must keep a true monotonic clock under faketime.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("node log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("start registrar serve");
        (child, log)
    }

    /// How many times its log mentions `text` so far.
    pub(crate) fn log_mentions(&self, text: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(text)
            .count()
    }

    pub(crate) fn pid(&self) -> String {
        self.child.id().expect("running").to_string()
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// SIGTERM, and wait for the drain and the exit.
    pub(crate) async fn stop(mut self) {
        self.signal("-TERM");
        tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("the node stops after its drain")
            .unwrap();
    }
}

/// The answers one student got: the final status and body, and the node that answered.
#[derive(Debug)]
pub(crate) struct Answer {
    student: Uuid,
    status: StatusCode,
    body: Value,
}

/// Enroll like a careful client: one `Idempotency-Key`, resent on 503 or a lost connection
/// (through the next node), for at most `patience`; the last answer (`None` if no node
/// ever answered).
pub(crate) async fn careful_enroll(
    client: Client,
    nodes: Arc<Vec<String>>,
    first: usize,
    token: String,
    section: Uuid,
    patience: Duration,
) -> Option<(StatusCode, Value)> {
    let path = format!("/api/v1/sections/{section}/enrollments");
    careful_post(client, nodes, first, token, &path, json!({}), patience).await
}

/// POST `body` to `path` like a careful client: one `Idempotency-Key`, resent on 503 or a
/// lost connection (through the next node), for at most `patience`; the last answer
/// (`None` if no node ever answered).
pub(crate) async fn careful_post(
    client: Client,
    nodes: Arc<Vec<String>>,
    first: usize,
    token: String,
    path: &str,
    body: Value,
    patience: Duration,
) -> Option<(StatusCode, Value)> {
    let key = Uuid::new_v4().to_string();
    let started = Instant::now();
    let mut last = None;
    for attempt in 0.. {
        let base = &nodes[(first + attempt) % nodes.len()];
        let sent = client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .header("idempotency-key", &key)
            .json(&body)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        if let Ok(r) = sent {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return Some((status, body));
            }
            last = Some((status, body));
        }
        if started.elapsed() > patience {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Enroll `students` in `section` through `nodes`, all at once.
pub(crate) async fn flood(
    app: &TestApp,
    nodes: Vec<String>,
    students: &[(Uuid, String)],
    section: Uuid,
) -> Vec<tokio::task::JoinHandle<Option<Answer>>> {
    let nodes = Arc::new(nodes);
    students
        .iter()
        .enumerate()
        .map(|(i, (student, token))| {
            let (client, nodes, token, student) =
                (app.client.clone(), nodes.clone(), token.clone(), *student);
            tokio::spawn(async move {
                let (status, body) =
                    careful_enroll(client, nodes, i, token, section, Duration::from_secs(30))
                        .await?;
                Some(Answer {
                    student,
                    status,
                    body,
                })
            })
        })
        .collect()
}

/// Every acknowledged enroll is in the database as acknowledged, every refusal is not;
/// the invariants hold. The number of acknowledgements.
pub(crate) async fn check_acknowledged(app: &TestApp, section: Uuid, answers: &[Answer]) -> usize {
    let mut acknowledged = 0;
    for a in answers {
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM enrollments WHERE section_id = $1 AND student_id = $2 AND status <> 'dropped'",
        )
        .bind(section)
        .bind(a.student)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        match a.status {
            StatusCode::CREATED => {
                acknowledged += 1;
                assert_eq!(status.as_deref(), Some("enrolled"), "lost seat: {a:?}");
            }
            StatusCode::ACCEPTED => {
                acknowledged += 1;
                assert!(status.is_some(), "lost waitlist place: {a:?}");
            }
            StatusCode::CONFLICT => {
                assert_eq!(a.body["code"], "section_full", "{a:?}");
                assert_eq!(status, None, "refused but recorded: {a:?}");
            }
            _ => {}
        }
    }
    let violations = registrar::verify::violations(&app.pool).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    acknowledged
}

/// An in-process node and two processes on one fresh database, balanced, with a hot
/// section owned by one of the processes: (node-a, the processes, section, its owner's
/// index).
async fn cluster_with_hot_section() -> (TestApp, Vec<Proc>, Uuid, usize) {
    cluster_with_hot_section_under(&[]).await
}

/// Like [`cluster_with_hot_section`], the processes run under `wrapper` (e.g. `env
/// FAILPOINTS=...`).
async fn cluster_with_hot_section_under(wrapper: &[&str]) -> (TestApp, Vec<Proc>, Uuid, usize) {
    let database = fresh_database().await;
    let mut s = node_settings(&database, "node-a", SHARDS);
    s.sections.call_timeout_ms = CALL_TIMEOUT_MS;
    let a = TestApp::start(s).await;
    let procs = vec![
        Proc::start_under(&database, "node-b", wrapper).await,
        Proc::start_under(&database, "node-c", wrapper).await,
    ];
    wait_balanced(&a, 3, SHARDS as i64).await;
    let term = a.open_term().await;
    a.course("CS101", 3, &[]).await;
    for i in 0..64 {
        let section = a
            .section(
                term,
                "CS101",
                &format!("S{i}"),
                20,
                10,
                serde_json::json!([]),
            )
            .await;
        let owner = owner_of(&a, section).await;
        if let Some(victim) = procs.iter().position(|p| p.id == owner) {
            return (a, procs, section, victim);
        }
    }
    panic!("no section landed on a process node");
}

#[tokio::test]
async fn kill_9_of_the_hot_sections_owner_loses_no_acknowledged_decision() {
    let (a, mut procs, section, victim) = cluster_with_hot_section().await;
    let survivor = procs[1 - victim].url.clone();
    let students = a.students(90, &[]).await;
    let calls = flood(&a, vec![a.address.clone(), survivor], &students, section).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let killed_at = Instant::now();
    procs[victim].signal("-KILL");
    let dead = procs.remove(victim);
    // The takeover: the section gets a new owner once the lease has run out.
    wait_until("the section has a new owner", async || {
        owner_of(&a, section).await != dead.id
    })
    .await;
    let takeover = killed_at.elapsed();
    let mut answers = Vec::new();
    for call in calls {
        answers.extend(call.await.unwrap());
    }
    let acknowledged = check_acknowledged(&a, section, &answers).await;
    eprintln!(
        "kill -9: takeover after {} ms (lease {} ms); {acknowledged} acknowledged, {} answered",
        takeover.as_millis(),
        a.settings.cluster.lease_ms,
        answers.len()
    );
    assert!(takeover < Duration::from_millis(a.settings.cluster.lease_ms + 5_000));
    // Careful clients all got their seat or their refusal in the end.
    assert_eq!(acknowledged, 30, "{answers:?}");
    assert_eq!(
        a.count(
            "SELECT seats_taken::bigint FROM sections WHERE id = $1",
            section
        )
        .await,
        20
    );
    for p in procs {
        p.stop().await;
    }
    a.stop().await;
}

#[tokio::test]
async fn a_node_paused_past_its_lease_is_fenced_and_rejoins() {
    let (a, procs, section, victim) = cluster_with_hot_section().await;
    let survivor = procs[1 - victim].url.clone();
    let incarnation = |id: String| {
        let pool = a.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<Uuid>>(
                "SELECT incarnation FROM cluster_nodes WHERE id = $1 AND state = 'active'",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten()
        }
    };
    let before = incarnation(procs[victim].id.clone()).await.expect("active");
    let students = a.students(90, &[]).await;
    let calls = flood(&a, vec![a.address.clone(), survivor], &students, section).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    procs[victim].signal("-STOP");
    let victim_id = procs[victim].id.clone();
    wait_until("the paused node's section has a new owner", async || {
        owner_of(&a, section).await != victim_id
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    procs[victim].signal("-CONT");
    // It finds itself declared dead, drops its actors and joins again as a new member.
    wait_until("the paused node rejoined", async || {
        incarnation(victim_id.clone())
            .await
            .is_some_and(|now| now != before)
    })
    .await;
    let mut answers = Vec::new();
    for call in calls {
        answers.extend(call.await.unwrap());
    }
    let acknowledged = check_acknowledged(&a, section, &answers).await;
    assert_eq!(acknowledged, 30, "{answers:?}");
    assert_eq!(
        a.count(
            "SELECT seats_taken::bigint FROM sections WHERE id = $1",
            section
        )
        .await,
        20
    );
    let metrics = a
        .client
        .get(format!("{}/metrics", procs[victim].url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("registrar_cluster_rejoins_total 1"),
        "the paused node counts its rejoin"
    );
    for p in procs {
        p.stop().await;
    }
    a.stop().await;
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_no_acknowledgement() {
    let (a, mut procs, section, _) = cluster_with_hot_section().await;
    let database = a
        .settings
        .database
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    // A wide section so most enrolls are seats: every one must survive the restarts.
    let wide = {
        let term = a.open_term().await;
        a.course("CS201", 3, &[]).await;
        a.section(term, "CS201", "01", 1_000, 0, serde_json::json!([]))
            .await
    };
    let students = a.students(240, &[]).await;
    let mut a = a;
    let mut calls = Vec::new();
    // Waves of enrolls while each node in turn stops (drains) and starts again: the two
    // processes, then the in-process node.
    for (wave, chunk) in students.chunks(60).enumerate() {
        let target = if wave % 2 == 0 { wide } else { section };
        let mut urls: Vec<String> = procs.iter().map(|p| p.url.clone()).collect();
        urls.push(a.address.clone());
        calls.push((target, flood(&a, urls, chunk, target).await));
        tokio::time::sleep(Duration::from_millis(100)).await;
        if wave < 2 {
            let old = procs.remove(0);
            let id = old.id.clone();
            old.stop().await;
            procs.push(Proc::start(&database, &id).await);
        } else if wave == 2 {
            let settings = a.stop().await;
            a = TestApp::start(settings).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut acknowledged = 0;
    for (target, wave) in calls {
        let mut answers = Vec::new();
        for call in wave {
            answers.extend(call.await.unwrap());
        }
        acknowledged += check_acknowledged(&a, target, &answers).await;
    }
    eprintln!("rolling restart: {acknowledged} acknowledged decisions, all durable");
    assert!(acknowledged >= 150, "{acknowledged}");
    for p in procs {
        p.stop().await;
    }
    a.stop().await;
}

/// Every shard has exactly one owner, and that owner is a live member.
async fn map_is_consistent(app: &TestApp) {
    wait_until("every shard owned by a live member", async || {
        let orphans: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM shard_owners o
              WHERE o.node_id IS NULL OR NOT EXISTS (SELECT 1 FROM cluster_nodes n
                    WHERE n.id = o.node_id AND n.state = 'active')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        orphans == 0
    })
    .await;
    wait_until("no move left open", async || {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM shard_moves WHERE state IN ('pending', 'running')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        open == 0
    })
    .await;
}

/// How long each handoff of the process nodes holds (the `handoff-hold` failpoint) with
/// its gates closed, before its ownership transaction: the window the kill lands in.
const HANDOFF_HOLD_MS: u64 = 3_000;

/// Move the hot section's shard to the other process during a flood; kill -9 the old or
/// the new owner while the old owner's handoff is held (gates closed, nothing handed over
/// yet): the map ends consistent, the move done or failed (failed for sure if the old owner
/// died holding it), every acknowledgement kept.
async fn kill_in_the_middle_of_a_move(kill_the_new_owner: bool) {
    let failpoint = format!("FAILPOINTS=handoff-hold=return(*:{HANDOFF_HOLD_MS})");
    let (a, mut procs, section, owner) = cluster_with_hot_section_under(&["env", &failpoint]).await;
    let op = {
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO students (id, username, password_hash, role) VALUES ($1, $2, $3, 'operator')")
            .bind(id)
            .bind(format!("op{}", id.simple()))
            .bind(&*DEMO_HASH)
            .execute(&a.pool)
            .await
            .unwrap();
        a.token(id, registrar::resources::Role::Operator)
    };
    let other = 1 - owner;
    let shard: u64 = a
        .get_json(&format!("/api/v1/cluster/sections/{section}"), Some(&op))
        .await["shard"]
        .as_u64()
        .unwrap();
    let students = a.students(90, &[]).await;
    let calls = flood(&a, vec![a.address.clone()], &students, section).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let to = procs[other].id.clone();
    // Holds so far (the balancing at start may have held some).
    let holds_before = procs[owner].log_mentions("handoff-hold");
    let r = a
        .post(
            &format!("/api/v1/cluster/shards/{shard}/move"),
            Some(&op),
            json!({"to": to}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    wait_until("the old owner's handoff holds", async || {
        procs[owner].log_mentions("handoff-hold") > holds_before
    })
    .await;
    let hold_seen = Instant::now();
    let state: String = sqlx::query_scalar("SELECT state FROM shard_moves WHERE id = $1")
        .bind(id)
        .fetch_one(&a.pool)
        .await
        .unwrap();
    let victim = if kill_the_new_owner { other } else { owner };
    procs[victim].signal("-KILL");
    let into_the_hold = hold_seen.elapsed();
    // The hold began before it was seen and lasts HANDOFF_HOLD_MS: the kill fell inside it.
    assert_eq!(state, "running", "the move was in flight at the kill");
    assert!(
        into_the_hold < Duration::from_millis(HANDOFF_HOLD_MS / 2),
        "the kill came {} ms after the hold was seen",
        into_the_hold.as_millis()
    );
    let dead = procs.remove(victim);
    wait_until("the killed node is declared dead", async || {
        let state: String = sqlx::query_scalar("SELECT state FROM cluster_nodes WHERE id = $1")
            .bind(&dead.id)
            .fetch_one(&a.pool)
            .await
            .unwrap();
        state == "dead"
    })
    .await;
    map_is_consistent(&a).await;
    let record = a
        .get_json(&format!("/api/v1/cluster/moves/{id}"), Some(&op))
        .await;
    assert!(
        record["state"] == "done" || record["state"] == "failed",
        "{record}"
    );
    if !kill_the_new_owner {
        // The old owner died holding the handoff: its ownership transaction never ran.
        assert_eq!(record["state"], "failed", "{record}");
    }
    let now = owner_of(&a, section).await;
    assert_ne!(now, dead.id, "the section lives on a live node");
    let mut answers = Vec::new();
    for call in calls {
        answers.extend(call.await.unwrap());
    }
    let acknowledged = check_acknowledged(&a, section, &answers).await;
    assert_eq!(acknowledged, 30, "{answers:?}");
    eprintln!(
        "killed the {} owner mid-move: move {record}",
        if kill_the_new_owner { "new" } else { "old" }
    );
    for p in procs {
        p.stop().await;
    }
    a.stop().await;
}

#[tokio::test]
async fn killing_the_old_owner_in_the_middle_of_a_move_keeps_the_map_and_every_acknowledgement() {
    kill_in_the_middle_of_a_move(false).await;
}

#[tokio::test]
async fn killing_the_new_owner_in_the_middle_of_a_move_keeps_the_map_and_every_acknowledgement() {
    kill_in_the_middle_of_a_move(true).await;
}
