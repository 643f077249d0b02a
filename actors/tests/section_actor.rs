//! Tests of the real [`SectionActor`](registrar_actors::SectionActor), reached through a
//! [`SectionRegistry`] writing through a [`MemoryStore`]: batching under a flood, waitlist
//! promotion on drop and on a capacity raise, failed commits, fencing, admission control,
//! passivation, replayed requests and unknown sections.
//!
//! The tests run on tokio's current-thread runtime (ractor spawns its actors on it) and
//! pause tokio's clock where commit latency matters, so timing never makes them flaky;
//! one flood also runs on a multi-threaded runtime for real parallelism. The passivation
//! test runs in real time, with a generous deadline: the actor measures quiet time with
//! `std::time::Instant`, which a paused tokio clock does not move.

use registrar_actors::memory::{MemoryStore, PanicAt};
use registrar_actors::section::SectionConfig;
use registrar_actors::{
    Call, CallError, Change, Command, CommitObserver, Counts, Outcome, Placement, Refusal,
    RegistryConfig, Reply, RequestId, SeatDrop, SectionId, SectionRegistry, StudentId, Version,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records every commit the actor reports; panics (in the actor) on a commit that changes
/// the `poison` student, once.
#[derive(Default)]
struct Recorder {
    commits: Mutex<Vec<(SectionId, Counts, usize, Version)>>,
    poison: Mutex<Option<StudentId>>,
}

impl CommitObserver for Recorder {
    fn committed(&self, section: SectionId, version: Version, counts: Counts, changes: &[Change]) {
        let mut poison = self.poison.lock().unwrap();
        if poison.is_some_and(|p| changes.iter().any(|c| c.kind.student() == Some(p))) {
            *poison = None;
            drop(poison);
            panic!("injected panic in the actor after a commit");
        }
        drop(poison);
        self.commits
            .lock()
            .unwrap()
            .push((section, counts, changes.len(), version));
    }
}

impl Recorder {
    /// The versions reported for `section`'s commits, in the order reported.
    fn versions(&self, section: SectionId) -> Vec<Version> {
        let commits = self.commits.lock().unwrap();
        commits
            .iter()
            .filter(|c| c.0 == section)
            .map(|c| c.3)
            .collect()
    }
}

struct Harness {
    store: Arc<MemoryStore>,
    observer: Arc<Recorder>,
    registry: Arc<SectionRegistry>,
}

fn harness(config: RegistryConfig) -> Harness {
    let store = Arc::new(MemoryStore::new());
    let observer = Arc::new(Recorder::default());
    let registry = Arc::new(SectionRegistry::new(
        store.clone(),
        observer.clone(),
        config,
    ));
    Harness {
        store,
        observer,
        registry,
    }
}

/// A harness with one section of the given capacities.
fn with_section(config: RegistryConfig, capacity: u32, waitlist: u32) -> (Harness, SectionId) {
    let h = harness(config);
    let section = SectionId::new_v4();
    h.store.add_section(section, capacity, waitlist);
    (h, section)
}

fn enroll(student: StudentId) -> Command {
    Command::Enroll {
        student,
        request: RequestId::new_v4(),
        seat_only: false,
        attrs: Vec::new(),
        permits: Vec::new(),
        capacity_permit: None,
    }
}

fn drop_cmd(student: StudentId) -> Command {
    Command::Drop {
        student,
        request: RequestId::new_v4(),
        seat: SeatDrop::Plain,
    }
}

fn set_capacity(capacity: u32) -> Command {
    Command::SetCapacity {
        capacity,
        request: RequestId::new_v4(),
    }
}

fn students(n: usize) -> Vec<StudentId> {
    (0..n).map(|_| StudentId::new_v4()).collect()
}

impl Harness {
    async fn call(&self, section: SectionId, command: Command) -> Result<Reply, CallError> {
        let wait = self.registry.call_timeout();
        (self.registry)
            .call(section, Call::new(command).waiting_at_most(wait))
            .await
    }

    /// Call and expect an accepted or refused decision (not a call error).
    async fn decide(&self, section: SectionId, command: Command) -> Result<Outcome, Refusal> {
        self.call(section, command)
            .await
            .expect("the call should get a decision")
            .outcome
    }

    /// Send all `commands` at once from separate tasks; results in the same order.
    async fn concurrently(
        &self,
        section: SectionId,
        commands: Vec<Command>,
    ) -> Vec<Result<Reply, CallError>> {
        let handles: Vec<_> = commands
            .into_iter()
            .map(|command| {
                let registry = self.registry.clone();
                let call = Call::new(command).waiting_at_most(registry.call_timeout());
                tokio::spawn(async move { registry.call(section, call).await })
            })
            .collect();
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            results.push(handle.await.expect("call task panicked"));
        }
        results
    }

    fn committed(&self, section: SectionId) -> (usize, Vec<StudentId>) {
        self.store.committed(section).expect("section exists")
    }
}

#[tokio::test]
async fn flood_fills_seats_then_waitlist_in_order_with_few_commits() {
    tokio::time::pause();
    let (h, section) = with_section(RegistryConfig::default(), 50, 100);
    // Every commit takes a (virtual) database round trip; commands queue meanwhile.
    h.store.set_commit_latency(Duration::from_millis(5));
    let crowd = students(2000);
    let results = h
        .concurrently(section, crowd.iter().map(|s| enroll(*s)).collect())
        .await;

    let mut enrolled = HashSet::new();
    let mut by_position = vec![None; 100];
    let mut full = 0;
    for (student, result) in crowd.iter().zip(&results) {
        let reply = result.as_ref().expect("every call gets a decision");
        assert!(reply.counts.seats_taken <= 50 && reply.counts.waitlist_length <= 100);
        match reply.outcome {
            Ok(Outcome::Enrolled) => assert!(enrolled.insert(*student)),
            Ok(Outcome::Waitlisted { position }) => {
                assert!((1..=100).contains(&position), "position {position}");
                let slot = &mut by_position[position as usize - 1];
                assert!(slot.is_none(), "position {position} handed out twice");
                *slot = Some(*student);
            }
            Err(Refusal::SectionFull) => full += 1,
            ref other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(enrolled.len(), 50);
    let waitlist: Vec<StudentId> = by_position
        .into_iter()
        .map(|s| s.expect("every position 1..=100 is handed out"))
        .collect();
    assert_eq!(full, 2000 - 50 - 100);

    // The store agrees: the same 50 seats, the same waitlist in the same order.
    let (seats, committed_waitlist) = h.committed(section);
    assert_eq!(seats, 50);
    assert_eq!(committed_waitlist, waitlist);
    assert!(enrolled.iter().all(|s| h.store.is_enrolled(section, *s)));
    // One change (and one event) per accepted enroll.
    assert_eq!(h.store.events(), 150);

    // Batching: far fewer commits than commands, but no batch above max_batch (512).
    let commits = h.store.commits();
    assert!(commits < 2000 / 4, "{commits} commits for 2000 commands");
    assert!(
        commits >= 4,
        "{commits} commits: a batch exceeded max_batch"
    );
    let observed = h.observer.commits.lock().unwrap().clone();
    assert_eq!(
        observed.len() as u64,
        commits,
        "observer told once per commit"
    );
    let last = observed.last().unwrap().1;
    assert_eq!(
        last,
        Counts {
            seats_taken: 50,
            capacity: 50,
            waitlist_length: 100,
            waitlist_capacity: 100,
            reserved_seats_left: 0,
        }
    );
    assert_eq!(h.registry.in_flight(), 0, "every permit came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_flood_keeps_every_invariant() {
    let (h, section) = with_section(RegistryConfig::default(), 20, 30);
    h.store.set_commit_latency(Duration::from_millis(1));
    let crowd = students(1000);
    // Every student enrolls, and every tenth one also drops at the same time.
    let mut commands: Vec<Command> = crowd.iter().map(|s| enroll(*s)).collect();
    commands.extend(crowd.iter().step_by(10).map(|s| drop_cmd(*s)));
    let results = h.concurrently(section, commands).await;

    // Who got what, by kind of answer.
    let (mut enrolled, mut waitlisted) = (HashSet::new(), HashSet::new());
    let (mut left_seat, mut left_waitlist, mut promoted) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    let drops = crowd.iter().step_by(10);
    for (student, result) in crowd.iter().chain(drops).zip(&results) {
        let reply = result.as_ref().expect("every call gets a decision");
        assert!(reply.counts.seats_taken <= 20 && reply.counts.waitlist_length <= 30);
        let fresh = match reply.outcome {
            Ok(Outcome::Enrolled) => enrolled.insert(*student),
            Ok(Outcome::Waitlisted { position }) => {
                assert!((1..=30).contains(&position));
                waitlisted.insert(*student)
            }
            Ok(Outcome::Dropped {
                from: Placement::Enrolled,
                promoted: p,
                withdrawn: false,
            }) => {
                if let Some(p) = p {
                    assert!(promoted.insert(p), "promoted twice");
                }
                left_seat.insert(*student)
            }
            Ok(Outcome::Dropped {
                from: Placement::Waitlisted,
                promoted: None,
                withdrawn: false,
            }) => left_waitlist.insert(*student),
            Err(Refusal::SectionFull | Refusal::NotEnrolled) => true,
            ref other => panic!("unexpected outcome {other:?}"),
        };
        assert!(fresh);
    }
    // Only waitlisted students get promoted.
    assert!(promoted.is_subset(&waitlisted));
    // The first 20 enrolls decided all find a seat (nobody waits before the section is full).
    assert!(enrolled.len() >= 20);

    // The store holds exactly what the answers imply.
    let seats: HashSet<StudentId> = enrolled
        .union(&promoted)
        .filter(|s| !left_seat.contains(*s))
        .copied()
        .collect();
    let waiting: HashSet<StudentId> = waitlisted
        .iter()
        .filter(|s| !promoted.contains(*s) && !left_waitlist.contains(*s))
        .copied()
        .collect();
    let (committed_seats, committed_waitlist) = h.committed(section);
    assert_eq!(committed_seats, seats.len());
    assert!(seats.iter().all(|s| h.store.is_enrolled(section, *s)));
    assert_eq!(
        committed_waitlist.iter().copied().collect::<HashSet<_>>(),
        waiting
    );
    assert!(committed_seats <= 20 && committed_waitlist.len() <= 30);
    assert!(
        committed_waitlist.is_empty() || committed_seats == 20,
        "someone waits while a seat is free"
    );
    assert_eq!(h.registry.in_flight(), 0);
}

#[tokio::test]
async fn drop_promotes_the_waitlist_head() {
    let (h, section) = with_section(RegistryConfig::default(), 2, 5);
    let s = students(5);
    let mut requests = Vec::new();
    for (i, student) in s.iter().enumerate() {
        let command = enroll(*student);
        requests.push(command.clone());
        let expected = match i {
            0 | 1 => Outcome::Enrolled,
            _ => Outcome::Waitlisted {
                position: i as u32 - 1,
            },
        };
        assert_eq!(h.decide(section, command).await, Ok(expected));
    }
    assert_eq!(h.committed(section), (2, vec![s[2], s[3], s[4]]));

    let reply = h.call(section, drop_cmd(s[0])).await.unwrap();
    assert_eq!(
        reply.outcome,
        Ok(Outcome::Dropped {
            from: Placement::Enrolled,
            promoted: Some(s[2]),
            withdrawn: false,
        })
    );
    assert_eq!(
        (reply.counts.seats_taken, reply.counts.waitlist_length),
        (2, 2)
    );
    assert_eq!(h.committed(section), (2, vec![s[3], s[4]]));
    assert!(h.store.is_enrolled(section, s[2]));
    assert!(!h.store.is_enrolled(section, s[0]));

    // Re-sent requests get their first answers (the state moved on, nothing is re-decided).
    assert_eq!(
        h.decide(section, requests[2].clone()).await,
        Ok(Outcome::Waitlisted { position: 1 })
    );
    assert_eq!(
        h.decide(section, requests[3].clone()).await,
        Ok(Outcome::Waitlisted { position: 2 })
    );

    // Leaving the waitlist promotes nobody.
    assert_eq!(
        h.decide(section, drop_cmd(s[3])).await,
        Ok(Outcome::Dropped {
            from: Placement::Waitlisted,
            promoted: None,
            withdrawn: false,
        })
    );
    assert_eq!(h.committed(section), (2, vec![s[4]]));
    assert_eq!(
        h.decide(section, drop_cmd(s[3])).await,
        Err(Refusal::NotEnrolled)
    );
}

#[tokio::test]
async fn capacity_raise_promotes_in_fifo_order_and_never_goes_below_taken() {
    let (h, section) = with_section(RegistryConfig::default(), 1, 10);
    let s = students(5);
    for student in &s {
        h.decide(section, enroll(*student)).await.unwrap();
    }
    assert_eq!(h.committed(section), (1, s[1..].to_vec()));

    let reply = h.call(section, set_capacity(3)).await.unwrap();
    assert_eq!(
        reply.outcome,
        Ok(Outcome::CapacityChanged {
            promoted: vec![s[1], s[2]]
        })
    );
    assert_eq!(
        reply.counts,
        Counts {
            seats_taken: 3,
            capacity: 3,
            waitlist_length: 2,
            waitlist_capacity: 10,
            reserved_seats_left: 0,
        }
    );
    assert_eq!(h.committed(section), (3, vec![s[3], s[4]]));

    let commits = h.store.commits();
    assert_eq!(
        h.decide(section, set_capacity(2)).await,
        Err(Refusal::CapacityBelowTaken {
            requested: 2,
            seats_taken: 3
        })
    );
    assert_eq!(h.committed(section), (3, vec![s[3], s[4]]));
    // The refusal is recorded (audit trail) but moves no seat.
    assert_eq!(h.store.commits(), commits + 1);

    // Capacity equal to the seats taken is fine; a raise then promotes the rest in order.
    assert_eq!(
        h.decide(section, set_capacity(3)).await,
        Ok(Outcome::CapacityChanged { promoted: vec![] })
    );
    assert_eq!(
        h.decide(section, set_capacity(10)).await,
        Ok(Outcome::CapacityChanged {
            promoted: vec![s[3], s[4]]
        })
    );
    assert_eq!(h.committed(section), (5, vec![]));
}

#[tokio::test]
async fn failed_commit_records_nothing_and_the_actor_recovers_from_the_store() {
    let (h, section) = with_section(RegistryConfig::default(), 4, 2);
    let s = students(6);
    for student in &s[..3] {
        assert_eq!(
            h.decide(section, enroll(*student)).await,
            Ok(Outcome::Enrolled)
        );
    }
    let commits = h.store.commits();
    let events = h.store.events();

    h.store.set_failing(true);
    let batch: Vec<Command> = s[3..].iter().map(|s| enroll(*s)).collect();
    for result in h.concurrently(section, batch.clone()).await {
        assert!(
            matches!(result, Err(CallError::Unavailable(_))),
            "got {result:?}"
        );
    }
    assert_eq!(
        h.store.commits(),
        commits,
        "a failed batch must commit nothing"
    );
    assert_eq!(h.store.events(), events);
    assert_eq!(h.committed(section), (3, vec![]));
    assert!(s[3..].iter().all(|x| !h.store.is_enrolled(section, *x)));

    h.store.set_failing(false);
    // Retry the same requests, last first. An actor still holding the failed decisions would
    // answer them as replays (s[3] enrolled) without committing anything.
    let retried: Vec<_> = batch.iter().rev().cloned().collect();
    let mut outcomes = Vec::new();
    for command in retried {
        outcomes.push(h.decide(section, command).await);
    }
    assert_eq!(
        outcomes,
        vec![
            Ok(Outcome::Enrolled),
            Ok(Outcome::Waitlisted { position: 1 }),
            Ok(Outcome::Waitlisted { position: 2 }),
        ]
    );
    assert_eq!(h.committed(section), (4, vec![s[4], s[3]]));
    assert!(h.store.is_enrolled(section, s[5]));
    assert_eq!(h.store.commits(), commits + 3);
    // The in-memory state is the store's: one more enroll is refused, a drop promotes s[4].
    assert_eq!(
        h.decide(section, enroll(StudentId::new_v4())).await,
        Err(Refusal::SectionFull)
    );
    assert_eq!(
        h.decide(section, drop_cmd(s[0])).await,
        Ok(Outcome::Dropped {
            from: Placement::Enrolled,
            promoted: Some(s[4]),
            withdrawn: false,
        })
    );
    assert_eq!(h.committed(section), (4, vec![s[3]]));
}

/// Wait (bounded) until the registry has forgotten every actor and released every permit.
async fn until_released(h: &Harness) {
    for _ in 0..1000 {
        if h.registry.active_sections() == 0 && h.registry.in_flight() == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "slot or permits not released: {} active, {} in flight",
        h.registry.active_sections(),
        h.registry.in_flight()
    );
}

#[tokio::test]
async fn a_commit_that_panics_is_in_doubt_and_the_actor_reloads_once() {
    let (h, section) = with_section(RegistryConfig::default(), 10, 0);
    let poison = StudentId::new_v4();
    h.store.panic_on_commit(poison, PanicAt::BeforeWrite);
    let result = h.call(section, enroll(poison)).await;
    // The commit failed holding it: to the caller its outcome is unknown, so it is
    // "pending" (a retry under the same id learns it), never "nothing was recorded".
    assert_eq!(result, Err(CallError::Pending));
    // The commit runs beside the actor: the actor outlives it and reloads once; the
    // command was not resent.
    assert_eq!(h.registry.actor_failures(), 0);
    assert!(!h.store.is_enrolled(section, poison));
    let other = StudentId::new_v4();
    assert_eq!(
        h.decide(section, enroll(other)).await,
        Ok(Outcome::Enrolled)
    );
    assert_eq!(h.store.loads(), 2, "one activation and one reload");
    // The same request again is decided afresh: the reload showed it was not recorded.
    assert_eq!(
        h.decide(section, enroll(poison)).await,
        Ok(Outcome::Enrolled)
    );
}

#[tokio::test]
async fn an_actor_that_fails_after_a_commit_answers_in_doubt_and_frees_its_slot() {
    let (h, section) = with_section(RegistryConfig::default(), 10, 0);
    let poison = StudentId::new_v4();
    *h.observer.poison.lock().unwrap() = Some(poison);
    let command = enroll(poison);
    // The actor fails holding a committed batch: its caller hears the outcome is unknown.
    assert_eq!(
        h.call(section, command.clone()).await,
        Err(CallError::Pending)
    );
    assert_eq!(h.registry.actor_failures(), 1);
    until_released(&h).await;
    assert!(h.store.is_enrolled(section, poison), "it was committed");
    // A fresh activation answers the retry by the recorded decision.
    assert_eq!(h.decide(section, command).await, Ok(Outcome::Enrolled));
    assert_eq!(h.store.loads(), 2);
}

#[tokio::test]
async fn a_command_whose_commit_outcome_is_unknown_is_never_decided_twice() {
    let (h, section) = with_section(RegistryConfig::default(), 10, 0);
    let s = students(4);
    h.store.panic_on_commit(s[0], PanicAt::AfterWrite);
    let commands: Vec<Command> = s.iter().map(|x| enroll(*x)).collect();
    let results = h.concurrently(section, commands.clone()).await;
    // The batch holding s[0] was written, then its commit task failed: its callers are
    // told the outcome is unknown; the actor reloads and decides the others.
    assert_eq!(results[0], Err(CallError::Pending));
    for result in &results {
        assert!(
            matches!(result, Ok(_) | Err(CallError::Pending)),
            "got {result:?}"
        );
    }
    assert_eq!(h.registry.actor_failures(), 0);
    let commits = h.store.commits();
    // Retrying every request with its id answers the recorded decision without a second
    // commit for the ones already written.
    for command in commands {
        assert_eq!(h.decide(section, command).await, Ok(Outcome::Enrolled));
    }
    assert_eq!(h.committed(section), (4, vec![]));
    assert!(s.iter().all(|x| h.store.is_enrolled(section, *x)));
    assert_eq!(
        h.store.commits(),
        commits,
        "every retry is a replay: nothing is decided or committed twice"
    );
}

#[tokio::test]
async fn fenced_actor_answers_not_owner_and_the_next_call_reactivates() {
    let (h, section) = with_section(RegistryConfig::default(), 5, 5);
    let (a, b) = (StudentId::new_v4(), StudentId::new_v4());
    assert_eq!(h.decide(section, enroll(a)).await, Ok(Outcome::Enrolled));
    let commits = h.store.commits();

    h.store.bump_epoch(section);
    let command = enroll(b);
    assert_eq!(
        h.call(section, command.clone()).await,
        Err(CallError::NotOwner)
    );
    assert_eq!(h.store.commits(), commits);
    assert!(!h.store.is_enrolled(section, b));

    // A fresh activation loads the new epoch and commits under it. (On this current-thread
    // runtime the fenced actor has stopped before this call is admitted; on a multi-threaded
    // one the call can still land in the stopping actor's mailbox and come back
    // `Unavailable("section actor stopped")`.)
    assert_eq!(h.decide(section, command).await, Ok(Outcome::Enrolled));
    assert!(h.store.is_enrolled(section, b));
    assert_eq!(h.committed(section), (2, vec![]));
    assert_eq!(h.store.commits(), commits + 1);
    assert_eq!(h.registry.active_sections(), 1);
    // And keeps working under it.
    assert_eq!(
        h.decide(section, enroll(a)).await,
        Err(Refusal::AlreadyEnrolled)
    );
}

#[tokio::test]
async fn section_admission_bound_sheds_extra_calls() {
    tokio::time::pause();
    let config = RegistryConfig {
        section_max_in_flight: 5,
        ..RegistryConfig::default()
    };
    let (h, section) = with_section(config, 100, 0);
    h.store.set_commit_latency(Duration::from_millis(50));
    let crowd = students(12);
    let results = h
        .concurrently(section, crowd.iter().map(|s| enroll(*s)).collect())
        .await;

    let admitted: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    let shed = results
        .iter()
        .filter(|r| matches!(r, Err(CallError::Overloaded)))
        .count();
    assert_eq!(admitted.len(), 5, "results: {results:?}");
    assert_eq!(shed, 7, "results: {results:?}");
    assert!(
        admitted
            .iter()
            .all(|r| r.as_ref().unwrap().outcome == Ok(Outcome::Enrolled))
    );
    // Shed calls were never decided.
    assert_eq!(h.committed(section).0, 5);
    for (student, result) in crowd.iter().zip(&results) {
        assert_eq!(h.store.is_enrolled(section, *student), result.is_ok());
    }

    // Places come back once answered.
    assert_eq!(h.registry.in_flight(), 0);
    let retried = h
        .concurrently(section, crowd[5..10].iter().map(|s| enroll(*s)).collect())
        .await;
    assert!(retried.iter().all(|r| r.is_ok()), "{retried:?}");
}

#[tokio::test]
async fn node_admission_bound_spans_sections() {
    tokio::time::pause();
    let config = RegistryConfig {
        node_max_in_flight: 3,
        ..RegistryConfig::default()
    };
    let h = harness(config);
    let (x, y) = (SectionId::new_v4(), SectionId::new_v4());
    h.store.add_section(x, 10, 0);
    h.store.add_section(y, 10, 0);
    h.store.set_commit_latency(Duration::from_millis(50));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let registry = h.registry.clone();
            let section = if i % 2 == 0 { x } else { y };
            let call =
                Call::new(enroll(StudentId::new_v4())).waiting_at_most(registry.call_timeout());
            tokio::spawn(async move { registry.call(section, call).await })
        })
        .collect();
    let mut ok = 0;
    let mut shed = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CallError::Overloaded) => shed += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, shed), (3, 3));
    assert_eq!(h.committed(x).0 + h.committed(y).0, 3);
    assert_eq!(h.registry.in_flight(), 0);
}

#[tokio::test]
async fn idle_section_passivates_and_reactivates_with_its_state() {
    // The actor measures quiet time with std's clock, so this test runs in real time.
    let config = RegistryConfig {
        section: SectionConfig {
            passivate_after: Duration::from_millis(50),
            ..SectionConfig::default()
        },
        ..RegistryConfig::default()
    };
    let (h, section) = with_section(config, 1, 1);
    let (a, b, c) = (
        StudentId::new_v4(),
        StudentId::new_v4(),
        StudentId::new_v4(),
    );
    let first = enroll(a);
    assert_eq!(
        h.decide(section, first.clone()).await,
        Ok(Outcome::Enrolled)
    );
    assert_eq!(h.registry.active_sections(), 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.registry.active_sections() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle section never passivated"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.registry.in_flight(), 0);

    // Reactivated from the store: the seat is still taken and the request still known.
    let commits = h.store.commits();
    assert_eq!(h.decide(section, first).await, Ok(Outcome::Enrolled));
    assert_eq!(h.store.commits(), commits, "a replay commits nothing");
    assert_eq!(h.registry.active_sections(), 1);
    assert_eq!(
        h.decide(section, enroll(b)).await,
        Ok(Outcome::Waitlisted { position: 1 })
    );
    assert_eq!(
        h.decide(section, enroll(c)).await,
        Err(Refusal::SectionFull)
    );
    assert_eq!(h.committed(section), (1, vec![b]));
}

#[tokio::test]
async fn commit_versions_only_grow_across_a_fence_and_a_reactivation() {
    // Real time, like the passivation test: the actor measures quiet time with std's clock.
    let config = RegistryConfig {
        section: SectionConfig {
            passivate_after: Duration::from_millis(50),
            ..SectionConfig::default()
        },
        ..RegistryConfig::default()
    };
    let (h, section) = with_section(config, 10, 0);
    let s = students(4);
    assert_eq!(h.decide(section, enroll(s[0])).await, Ok(Outcome::Enrolled));
    assert_eq!(h.decide(section, enroll(s[1])).await, Ok(Outcome::Enrolled));
    // Another node took the shard and gave it back: the next activation writes under a
    // newer epoch.
    h.store.bump_epoch(section);
    assert_eq!(
        h.call(section, enroll(s[2])).await,
        Err(CallError::NotOwner)
    );
    assert_eq!(h.decide(section, enroll(s[2])).await, Ok(Outcome::Enrolled));
    // Passivated and activated again under the same epoch: a per-activation counter would
    // start over here.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.registry.active_sections() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never passivated");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.decide(section, enroll(s[3])).await, Ok(Outcome::Enrolled));

    let versions = h.observer.versions(section);
    assert_eq!(
        versions.iter().map(|v| v.epoch).collect::<Vec<_>>(),
        vec![1, 1, 2, 2]
    );
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions went back: {versions:?}"
    );
    assert!(versions[2] > Version::read_at(2) && Version::read_at(2) > versions[1]);
}

#[tokio::test]
async fn same_request_twice_is_decided_once() {
    let (h, section) = with_section(RegistryConfig::default(), 1, 3);
    let (a, b) = (StudentId::new_v4(), StudentId::new_v4());

    // One after the other.
    let command = enroll(a);
    let first = h.call(section, command.clone()).await.unwrap();
    let commits = h.store.commits();
    let again = h.call(section, command).await.unwrap();
    assert_eq!(first.outcome, Ok(Outcome::Enrolled));
    assert_eq!(again.outcome, first.outcome);
    assert_eq!(again.counts.seats_taken, 1);
    assert_eq!(h.store.commits(), commits, "a replay commits nothing");
    // A new request for the same student is a different decision.
    assert_eq!(
        h.decide(section, enroll(a)).await,
        Err(Refusal::AlreadyEnrolled)
    );

    // Both copies at once (same batch or not): one waitlist place, same answer.
    let command = enroll(b);
    let both = h
        .concurrently(section, vec![command.clone(), command])
        .await;
    for reply in &both {
        assert_eq!(
            reply.as_ref().unwrap().outcome,
            Ok(Outcome::Waitlisted { position: 1 })
        );
    }
    assert_eq!(h.committed(section), (1, vec![b]));
}

#[tokio::test]
async fn unknown_section_is_not_found_and_leaves_nothing_behind() {
    let h = harness(RegistryConfig::default());
    let unknown = SectionId::new_v4();
    assert_eq!(
        h.call(unknown, enroll(StudentId::new_v4())).await,
        Err(CallError::NotFound)
    );
    assert_eq!(h.registry.active_sections(), 0);
    assert_eq!(h.registry.in_flight(), 0);
    assert_eq!(h.store.commits(), 0);
    // Still not found the second time (no half-activated actor is cached).
    assert_eq!(
        h.call(unknown, drop_cmd(StudentId::new_v4())).await,
        Err(CallError::NotFound)
    );
}

#[tokio::test]
async fn a_drop_resent_to_a_fresh_activation_recognises_its_own_commit() {
    // The owner committed the drop and its answer was lost; the section was then activated
    // again (a move, a failover, a passivation): the same request must not read as
    // "not enrolled", which a swap would take for a failed drop.
    let (h, section) = with_section(RegistryConfig::default(), 1, 1);
    let (a, b) = (StudentId::new_v4(), StudentId::new_v4());
    let take = enroll(a);
    assert_eq!(h.decide(section, take.clone()).await, Ok(Outcome::Enrolled));
    assert_eq!(
        h.decide(section, enroll(b)).await,
        Ok(Outcome::Waitlisted { position: 1 })
    );
    let leave = drop_cmd(a);
    let first = h.decide(section, leave.clone()).await;
    assert_eq!(
        first,
        Ok(Outcome::Dropped {
            from: Placement::Enrolled,
            promoted: Some(b),
            withdrawn: false,
        })
    );
    h.store.bump_epoch(section);
    assert_eq!(
        h.call(section, enroll(StudentId::new_v4())).await,
        Err(CallError::NotOwner)
    );
    let commits = h.store.commits();
    assert_eq!(
        h.decide(section, leave).await,
        first,
        "the drop is replayed"
    );
    // The enroll that came before it is replayed too, not decided again.
    assert_eq!(h.decide(section, take).await, Ok(Outcome::Enrolled));
    assert_eq!(h.store.commits(), commits, "a replay commits nothing");
    assert_eq!(h.committed(section), (1, vec![]));
}

#[tokio::test]
async fn a_command_past_its_callers_deadline_is_not_decided_but_a_decided_one_is_answered() {
    let (h, section) = with_section(RegistryConfig::default(), 5, 0);
    let (a, b) = (StudentId::new_v4(), StudentId::new_v4());
    let first = enroll(a);
    assert_eq!(
        h.decide(section, first.clone()).await,
        Ok(Outcome::Enrolled)
    );
    let past = Some(tokio::time::Instant::now());
    tokio::time::sleep(Duration::from_millis(2)).await;
    // The copy's caller stopped waiting: nothing is decided for nobody.
    let late = h
        .registry
        .call(section, Call::new(enroll(b)).expiring(past))
        .await;
    assert!(matches!(late, Err(CallError::Unavailable(_))), "{late:?}");
    assert!(!h.store.is_enrolled(section, b));
    // A request decided before still gets its answer, deadline or not.
    let again = (h.registry)
        .call(section, Call::new(first).expiring(past))
        .await;
    assert_eq!(again.map(|r| r.outcome), Ok(Ok(Outcome::Enrolled)));
    assert_eq!(h.committed(section), (1, vec![]));
}

/// Registry tuning with two batches of a section committing at once.
fn pipelined() -> RegistryConfig {
    let mut config = RegistryConfig::default();
    config.section.pipeline = 2;
    config
}

/// Call `command` from a task of its own, recording in `order` when it was answered.
fn call_in_order(
    h: &Harness,
    section: SectionId,
    command: Command,
    tag: &'static str,
    order: &Arc<Mutex<Vec<&'static str>>>,
) -> tokio::task::JoinHandle<Result<Reply, CallError>> {
    let registry = h.registry.clone();
    let order = order.clone();
    tokio::spawn(async move {
        let call = Call::new(command).waiting_at_most(registry.call_timeout());
        let result = registry.call(section, call).await;
        order.lock().unwrap().push(tag);
        result
    })
}

/// Let the actor take what was sent and hand its batch to the store (the commit then
/// waits out its latency: the paused clock does not move while this task runs).
async fn until_committing() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_decided_while_the_previous_commits_is_answered_after_it() {
    let (h, section) = with_section(pipelined(), 1, 0);
    h.store.set_commit_latency(Duration::from_millis(20));
    let (a, b) = (StudentId::new_v4(), StudentId::new_v4());
    let order = Arc::new(Mutex::new(Vec::new()));
    let first = call_in_order(&h, section, enroll(a), "a", &order);
    until_committing().await;
    let second = call_in_order(&h, section, enroll(b), "b", &order);
    let first = first.await.unwrap().expect("a decided");
    let second = second.await.unwrap().expect("b decided");
    assert_eq!(first.outcome, Ok(Outcome::Enrolled));
    // Decided on top of a's seat before a's commit ended: the section was full.
    assert_eq!(second.outcome, Err(Refusal::SectionFull));
    assert_eq!(
        *order.lock().unwrap(),
        ["a", "b"],
        "answered in decision order"
    );
    assert_eq!(h.store.commits(), 2);
    assert_eq!(h.committed(section), (1, vec![]));
}

#[tokio::test(start_paused = true)]
async fn a_batch_decided_on_top_of_a_failed_commit_is_not_recorded() {
    let (h, section) = with_section(pipelined(), 1, 0);
    h.store.set_commit_latency(Duration::from_millis(20));
    let (a, b) = (StudentId::new_v4(), StudentId::new_v4());
    h.store.fail_commit_of(a);
    let order = Arc::new(Mutex::new(Vec::new()));
    let first = call_in_order(&h, section, enroll(a), "a", &order);
    until_committing().await;
    let command_b = enroll(b);
    let second = call_in_order(&h, section, command_b.clone(), "b", &order);
    assert!(matches!(
        first.await.unwrap(),
        Err(CallError::Unavailable(_))
    ));
    // b was refused (section full) on top of a's seat, which was never recorded: that
    // refusal must not be recorded or answered either.
    assert!(
        matches!(second.await.unwrap(), Err(CallError::Unavailable(_))),
        "a refusal decided on a seat that did not commit was answered"
    );
    assert_eq!(*order.lock().unwrap(), ["a", "b"]);
    assert_eq!(h.committed(section), (0, vec![]));
    // After the reload, b's request (same id) is decided afresh and gets the seat.
    assert_eq!(h.decide(section, command_b).await, Ok(Outcome::Enrolled));
    assert_eq!(h.store.loads(), 2, "one activation and one reload");
}
