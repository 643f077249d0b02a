//! The node-wide committer against PostgreSQL: many sections' batches go into one
//! transaction, a fenced batch is left out of it while its neighbours commit, and a batch
//! the database rejects fails alone after the group is retried batch by batch; a batch of
//! refusals alone writes its audit rows and no section row; a batch commits only on top of
//! the commit count it was decided on; a committer on a thread of its own commits there.

use crate::helpers::TestApp;
use chrono::Utc;
use registrar::store::NodePools;
use registrar::store::sections::{CommitterConfig, PgSectionStore};
use registrar_actors::ledger::SeatLedger;
use registrar_actors::{
    AttemptRecord, Command, CommitBatch, RequestId, SectionId, SectionStore, StoreError, StudentId,
};
use serde_json::json;
use std::sync::atomic::Ordering;
use uuid::Uuid;

/// One enroll of `student` in `section`, decided on a ledger restored from the store.
async fn enroll_batch(store: &PgSectionStore, section: Uuid, student: Uuid) -> CommitBatch {
    let snap = store.load(SectionId(section)).await.unwrap();
    let mut ledger = SeatLedger::restore(
        snap.capacity,
        snap.waitlist_capacity,
        snap.enrolled,
        snap.waitlist,
        snap.next_waitlist_seq,
    );
    let request = RequestId::new_v4();
    let command = Command::Enroll {
        student: StudentId(student),
        request,
        seat_only: false,
        attrs: Vec::new(),
        permits: Vec::new(),
        capacity_permit: None,
    };
    let decision = ledger.apply(&command);
    CommitBatch {
        section: SectionId(section),
        shard: snap.shard,
        epoch: snap.epoch,
        decided_at: Utc::now(),
        counts: ledger.counts(),
        changes: decision.changes,
        attempts: vec![AttemptRecord {
            request,
            student: Some(StudentId(student)),
            action: command.action(),
            outcome: decision.outcome,
            home: None,
        }],
        after: Some(snap.commit_seq),
    }
}

/// A store with one committer worker on the test's own runtime: every commit queued before
/// the test next awaits is in that worker's next group.
fn single_worker_store(app: &TestApp) -> PgSectionStore {
    store_with(
        app,
        CommitterConfig {
            workers: 1,
            own_thread: false,
            ..Default::default()
        },
    )
}

/// A store on the test's database whose committer runs as `config` says.
fn store_with(app: &TestApp, config: CommitterConfig) -> PgSectionStore {
    let pools = NodePools {
        reads: app.pool.clone(),
        commits: app.pool.clone(),
    };
    let node = app.settings.cluster.node_id.clone();
    PgSectionStore::with_committer(pools, node, config, Default::default())
}

/// How many threads of this process are named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// An open term and section 01 of a new course `code`, one seat and no waitlist.
async fn one_seat_section(app: &TestApp, code: &str) -> (Uuid, Uuid) {
    let term = app.open_term().await;
    app.course(code, 3, &[]).await;
    (term, app.section(term, code, "01", 1, 0, json!([])).await)
}

/// The ids of `n` new students.
async fn student_ids(app: &TestApp, n: usize) -> Vec<Uuid> {
    app.students(n, &[])
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn one_transaction_for_many_sections_leaving_out_fenced_and_rejected_batches() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("GC101", 3, &[]).await;
    let mut sections = Vec::new();
    for i in 0..12 {
        sections.push(
            app.section(term, "GC101", &format!("{i:02}"), 10, 0, json!([]))
                .await,
        );
    }
    let students = student_ids(&app, 2 * sections.len()).await;
    let store = single_worker_store(&app);
    let mut batches = Vec::new();
    for (section, student) in sections.iter().zip(&students) {
        batches.push(enroll_batch(&store, *section, *student).await);
    }

    // Section 0: another node wrote it under a newer epoch since (section-level fence).
    sqlx::query("UPDATE sections SET owner_epoch = $2 WHERE id = $1")
        .bind(sections[0])
        .bind(batches[0].epoch + 1)
        .execute(&app.pool)
        .await
        .unwrap();
    // Section 1: its batch claims an epoch the shard never had (shard-level fence).
    batches[1].epoch += 1;
    // Section 2: counters that do not match the rows; the deferred trigger rejects it.
    batches[2].counts.seats_taken = 2;

    // Every commit is queued before the single worker runs (current-thread runtime).
    let results = futures_util::future::join_all(batches.iter().map(|b| store.commit(b))).await;
    assert_eq!(results[0], Err(StoreError::Fenced));
    assert_eq!(results[1], Err(StoreError::Fenced));
    assert!(
        matches!(results[2], Err(StoreError::Unavailable(_))),
        "{:?}",
        results[2]
    );
    for (i, result) in results.iter().enumerate().skip(3) {
        assert_eq!(*result, Ok(()), "section {i}");
    }

    // The group failed on section 2, then each batch was retried alone: the 9 good ones
    // committed in a transaction each.
    let stats = store.stats();
    assert_eq!(stats.transactions.load(Ordering::Relaxed), 9);
    assert_eq!(stats.batches.load(Ordering::Relaxed), 9);

    // A second round on the good sections: all 9 batches in ONE transaction.
    let mut second = Vec::new();
    for (section, student) in sections.iter().zip(&students[sections.len()..]).skip(3) {
        second.push(enroll_batch(&store, *section, *student).await);
    }
    let results = futures_util::future::join_all(second.iter().map(|b| store.commit(b))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(stats.transactions.load(Ordering::Relaxed), 10);
    assert_eq!(stats.batches.load(Ordering::Relaxed), 18);

    // Per section: its rows, attempts, events and seat counter; 2 each where both rounds
    // committed, none where the first round was left out.
    let figures = [
        "SELECT count(*) FROM enrollments WHERE section_id = $1",
        "SELECT count(*) FROM registration_attempts WHERE section_id = $1",
        "SELECT count(*) FROM outbox WHERE payload->>'section_id' = $1::text",
        "SELECT seats_taken::int8 FROM sections WHERE id = $1",
    ];
    for (i, section) in sections.iter().enumerate() {
        let mut got = Vec::new();
        for sql in figures {
            got.push(app.count(sql, *section).await);
        }
        let expect = if i >= 3 { 2 } else { 0 };
        assert_eq!(
            got, [expect; 4],
            "section {i}: rows, attempts, events, seats taken"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_batch_of_refusals_alone_writes_its_audit_but_no_section_row() {
    let app = TestApp::spawn().await;
    let (_, section) = one_seat_section(&app, "GC102").await;
    let students = student_ids(&app, 3).await;
    let store = PgSectionStore::new(app.pool.clone(), app.settings.cluster.node_id.clone());
    let seat = enroll_batch(&store, section, students[0]).await;
    assert_eq!(store.commit(&seat).await, Ok(()));
    // The row version of the section after the seat was taken.
    let version = async || -> String {
        sqlx::query_scalar("SELECT xmin::text FROM sections WHERE id = $1")
            .bind(section)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let after_seat = version().await;

    // The section is full: the next enroll is refused, with no change.
    let refused = enroll_batch(&store, section, students[1]).await;
    assert!(refused.changes.is_empty() && refused.attempts[0].outcome.is_err());
    assert_eq!(store.commit(&refused).await, Ok(()));
    assert_eq!(
        version().await,
        after_seat,
        "a refusal rewrote the section row"
    );
    let refusals =
        "SELECT count(*) FROM registration_attempts WHERE section_id = $1 AND outcome = 'refused'";
    assert_eq!(
        app.count(refusals, section).await,
        1,
        "the refusal is audited"
    );

    // Without a section row to write, a stale batch is still fenced by its shard's epoch.
    let mut stale = enroll_batch(&store, section, students[2]).await;
    stale.epoch += 1;
    assert_eq!(store.commit(&stale).await, Err(StoreError::Fenced));
    assert_eq!(
        app.count(refusals, section).await,
        1,
        "a fenced refusal was audited"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_commits_only_on_the_commit_count_it_was_decided_on() {
    let app = TestApp::spawn().await;
    let (term, section) = one_seat_section(&app, "GC103").await;
    let neighbour = app.section(term, "GC103", "02", 1, 0, json!([])).await;
    let s = student_ids(&app, 3).await;
    let store = single_worker_store(&app);
    let count = async |id: Uuid| -> i64 {
        sqlx::query_scalar("SELECT commit_seq FROM sections WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let audited = "SELECT count(*) FROM registration_attempts WHERE section_id = $1";
    let unavailable = |r: &Result<(), StoreError>| matches!(r, Err(StoreError::Unavailable(_)));

    // Decided on top of an earlier batch that never committed (the count it names is one
    // ahead): left out, nothing written. In the same transaction as a neighbour that is
    // placed, which commits.
    let mut ahead = enroll_batch(&store, section, s[0]).await;
    ahead.after = ahead.after.map(|a| a + 1);
    let fine = enroll_batch(&store, neighbour, s[0]).await;
    let (ahead_result, fine_result) = tokio::join!(store.commit(&ahead), store.commit(&fine));
    assert!(unavailable(&ahead_result), "{ahead_result:?}");
    assert_eq!(fine_result, Ok(()));
    assert_eq!(app.count(audited, section).await, 0);
    assert!(app.rows(section).await.is_empty());
    assert_eq!(count(section).await, 0);
    assert_eq!(app.count(audited, neighbour).await, 1);
    assert_eq!(count(neighbour).await, 1);

    // On the count it names: committed, and the count moves on.
    let seat = enroll_batch(&store, section, s[0]).await;
    assert_eq!(seat.after, Some(0));
    assert_eq!(store.commit(&seat).await, Ok(()));
    assert_eq!(count(section).await, 1);

    // A refusal decided on top of a batch that did not commit is left out as well; on
    // the committed count it is audited, and leaves the count as it is.
    let mut refusal = enroll_batch(&store, section, s[1]).await;
    assert!(refusal.changes.is_empty() && refusal.after == Some(1));
    refusal.after = Some(2);
    assert!(unavailable(&store.commit(&refusal).await));
    assert_eq!(app.count(audited, section).await, 1, "only the seat");
    refusal.after = Some(1);
    assert_eq!(store.commit(&refusal).await, Ok(()));
    assert_eq!(app.count(audited, section).await, 2);
    assert_eq!(count(section).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_committer_on_a_thread_of_its_own_commits_there() {
    let app = TestApp::spawn().await;
    let (_, section) = one_seat_section(&app, "GC104").await;
    let student = student_ids(&app, 1).await[0];
    let before = threads_named("committer");
    let config = CommitterConfig {
        own_thread: true,
        ..Default::default()
    };
    let store = store_with(&app, config);
    // A thread takes its name once it runs.
    let mut named = threads_named("committer");
    for _ in 0..100 {
        if named > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        named = threads_named("committer");
    }
    assert_eq!(named, before + 1, "no committer thread");
    let seat = enroll_batch(&store, section, student).await;
    let committed = tokio::time::timeout(std::time::Duration::from_secs(10), store.commit(&seat));
    assert_eq!(committed.await, Ok(Ok(())), "the thread's workers commit");
    let enrolled = "SELECT count(*) FROM enrollments WHERE section_id = $1 AND status = 'enrolled'";
    assert_eq!(app.count(enrolled, section).await, 1);
    app.stop().await;
}
