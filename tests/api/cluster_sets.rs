//! Linked sets across a cluster under faults: a lecture owned by one process node, its
//! lab by another, its recitation by the in-process node, students whose home is a process node flooding `POST /enrollments/sets`
//! as careful clients (one `Idempotency-Key`, resent on 503 or a lost connection through
//! another node). Every decision holds for a moment after its holds are answered
//! (failpoint `bundle-holding`), and a node is killed inside that moment: the owner of a
//! participant (the lab), or the students' home. Judged by PostgreSQL after the cluster
//! settles: every student has the whole set or none of it, every acknowledged set is
//! enrolled, no held seat outlives its decision, and `registrar verify` is clean.

use crate::cluster::{node_settings, owner_of, wait_balanced};
use crate::cluster_procs::{Proc, SHARDS, careful_post};
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long each decision holds at its step, on the process nodes.
const HOLD_MS: u64 = 2_000;

/// Which node the test strikes while decisions hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Victim {
    /// The owner of the lab (a participant), killed; the students' home survives.
    Participant,
    /// The students' home, killed; both participants survive.
    Home,
    /// The students' home, paused (SIGSTOP) past its lease and then let go on: its
    /// students get a new home meanwhile, and its decisions wake up fenced.
    PausedHome,
}

/// The step at which the decisions hold when the node is struck.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    /// Every hold answered, nothing decided (failpoint `bundle-holding`).
    Holding,
    /// Confirmed or cancelled, nothing carried out (failpoint `bundle-decided`).
    Decided,
}

impl Step {
    fn failpoint(self) -> &'static str {
        match self {
            Step::Holding => "bundle-holding",
            Step::Decided => "bundle-decided",
        }
    }
}

/// The node owning `student`'s shard (their home).
async fn home_of(app: &TestApp, student: Uuid) -> String {
    let shard = registrar::shard::shard_of(student, SHARDS) as i32;
    sqlx::query_scalar("SELECT node_id FROM shard_owners WHERE shard = $1")
        .bind(shard)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A section of `course` (`component`, linked to `links`) owned by `owner`.
async fn section_on(
    app: &TestApp,
    term: Uuid,
    course: &str,
    component: &str,
    links: &[Uuid],
    owner: &str,
) -> Uuid {
    for i in 0..64 {
        let body = json!({"term_id": term, "course_code": course, "section_code": format!("{}{i}", &component[..3].to_uppercase()),
            "component": component, "links": links, "capacity": 12, "waitlist_capacity": 0,
            "meetings": []});
        let id: Uuid = app.admin_post("/api/v1/sections", body).await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if owner_of(app, id).await == owner {
            return id;
        }
    }
    panic!("no {component} section landed on {owner}");
}

async fn kill_during_sets(victim: Victim, step: Step) {
    let database = fresh_database().await;
    let mut s = node_settings(&database, "node-a", SHARDS);
    s.sections.call_timeout_ms = 2_000;
    s.sections.swap_finish_after_ms = 1_000;
    s.sections.decision_deadline_ms = 4_000;
    let a = TestApp::start(s).await;
    let failpoint = format!("FAILPOINTS={}=return(*:{HOLD_MS})", step.failpoint());
    let wrapper = [
        "env",
        failpoint.as_str(),
        "REGISTRAR_SWAP_FINISH_AFTER_MS=1000",
        "REGISTRAR_DECISION_DEADLINE_MS=4000",
    ];
    let mut procs = vec![
        Proc::start_under(&database, "node-b", &wrapper).await,
        Proc::start_under(&database, "node-c", &wrapper).await,
    ];
    wait_balanced(&a, 3, SHARDS as i64).await;
    let term = a.open_term().await;
    a.admin_post(
        "/api/v1/courses",
        json!({"code": "CHEM1411", "title": "Chemistry", "credits": 4, "components": ["lecture", "lab", "recitation"]}),
    )
    .await;
    // The homes are node-b; the participants node-c (lab) and node-a or node-b (lecture).
    let (lecture_owner, lab_owner, home) = match victim {
        Victim::Participant => ("node-b", "node-c", "node-b"),
        Victim::Home | Victim::PausedHome => ("node-a", "node-c", "node-b"),
    };
    let lecture = section_on(&a, term, "CHEM1411", "lecture", &[], lecture_owner).await;
    let lab = section_on(&a, term, "CHEM1411", "lab", &[lecture], lab_owner).await;
    // The recitation lives on the in-process node, which the test never strikes.
    let recitation = section_on(&a, term, "CHEM1411", "recitation", &[lecture], "node-a").await;
    let mut students = Vec::new();
    for (id, token) in a.students(120, &[]).await {
        if home_of(&a, id).await == home && students.len() < 24 {
            students.push((id, token));
        }
    }
    assert!(students.len() >= 12, "enough students at home on {home}");
    let nodes = Arc::new(vec![
        a.address.clone(),
        procs[0].url.clone(),
        procs[1].url.clone(),
    ]);
    let calls: Vec<_> = students
        .iter()
        .enumerate()
        .map(|(i, (student, token))| {
            let (client, nodes, token, student) =
                (a.client.clone(), nodes.clone(), token.clone(), *student);
            tokio::spawn(async move {
                let body = json!({"sections": [lecture, lab, recitation]});
                let path = "/api/v1/enrollments/sets";
                let patience = Duration::from_secs(60);
                let answer = careful_post(client, nodes, i, token, path, body, patience).await;
                (student, answer)
            })
        })
        .collect();
    // Strike inside the step: some decisions hold their seats there, on the home.
    let struck = match victim {
        Victim::Participant => 1,
        Victim::Home | Victim::PausedHome => 0,
    };
    let at_step = match step {
        Step::Holding => "SELECT count(*) FROM decisions WHERE state = 'pending'",
        Step::Decided => {
            "SELECT count(*) FROM decisions WHERE state <> 'pending' AND finished_at IS NULL"
        }
    };
    wait_until(
        "decisions hold at the step with their seats held",
        async || {
            let held: i64 =
                sqlx::query_scalar("SELECT count(*) FROM enrollments WHERE status = 'held'")
                    .fetch_one(&a.pool)
                    .await
                    .unwrap();
            held >= 2 && procs[0].log_mentions(step.failpoint()) > 0
        },
    )
    .await;
    let at_strike: i64 = sqlx::query_scalar(at_step)
        .fetch_one(&a.pool)
        .await
        .unwrap();
    let struck_id = procs[struck].id.clone();
    if victim == Victim::PausedHome {
        procs[struck].signal("-STOP");
        tokio::time::sleep(Duration::from_millis(a.settings.cluster.lease_ms + 2_000)).await;
        procs[struck].signal("-CONT");
    } else {
        procs[struck].signal("-KILL");
        procs.remove(struck);
    }
    assert!(
        at_strike > 0,
        "the fault fell inside a decision at {step:?}"
    );
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    // Settle: the finishers carry out or cancel what the dead node left.
    wait_until(
        "every decision is finished and no seat is held",
        async || {
            let open: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM decisions WHERE finished_at IS NULL)
                  + (SELECT count(*) FROM enrollments WHERE status = 'held')",
            )
            .fetch_one(&a.pool)
            .await
            .unwrap();
            open == 0
        },
    )
    .await;
    let mut acknowledged = 0;
    for (student, answer) in &answers {
        let mut held: Vec<Uuid> = sqlx::query_scalar(
            "SELECT section_id FROM enrollments WHERE student_id = $1 AND status <> 'dropped'",
        )
        .bind(student)
        .fetch_all(&a.pool)
        .await
        .unwrap();
        held.sort();
        let mut whole = vec![lecture, lab, recitation];
        whole.sort();
        assert!(
            held.is_empty() || held == whole,
            "student {student} holds part of the set: {held:?} ({answer:?})"
        );
        match answer {
            Some((StatusCode::CREATED, _)) => {
                acknowledged += 1;
                assert_eq!(held, whole, "an acknowledged set was lost: {answer:?}");
            }
            Some((StatusCode::CONFLICT, body)) => {
                assert_eq!(body["code"], "section_full", "{body}");
                assert!(held.is_empty(), "refused but recorded: {body}");
            }
            _ => {}
        }
    }
    let violations = registrar::verify::violations(&a.pool).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let seats: i64 = a
        .count(
            "SELECT seats_taken::bigint FROM sections WHERE id = $1",
            lab,
        )
        .await;
    eprintln!(
        "{victim:?} ({struck_id}) struck at {step:?} with {at_strike} decisions there: {acknowledged} sets acknowledged, {seats} lab seats taken, {} answered",
        answers.iter().filter(|(_, a)| a.is_some()).count()
    );
    let mut by_answer: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, answer) in &answers {
        let k = match answer {
            Some((st, body)) => format!("{} {}", st.as_u16(), body["code"].as_str().unwrap_or("")),
            None => "none".into(),
        };
        *by_answer.entry(k).or_default() += 1;
    }
    eprintln!("answers: {by_answer:?}");
    assert!(acknowledged > 0, "some sets were taken");
    for p in procs {
        p.stop().await;
    }
    a.stop().await;
}

#[tokio::test]
async fn killing_a_participants_owner_inside_a_decision_leaves_every_set_whole_or_absent() {
    kill_during_sets(Victim::Participant, Step::Holding).await;
}

#[tokio::test]
async fn killing_a_participants_owner_after_a_decision_leaves_every_set_whole_or_absent() {
    kill_during_sets(Victim::Participant, Step::Decided).await;
}

#[tokio::test]
async fn killing_the_home_inside_a_decision_leaves_every_set_whole_or_absent() {
    kill_during_sets(Victim::Home, Step::Holding).await;
}

#[tokio::test]
async fn killing_the_home_after_a_decision_leaves_every_set_whole_or_absent() {
    kill_during_sets(Victim::Home, Step::Decided).await;
}

#[tokio::test]
async fn pausing_the_home_past_its_lease_inside_a_decision_leaves_every_set_whole_or_absent() {
    kill_during_sets(Victim::PausedHome, Step::Holding).await;
}
