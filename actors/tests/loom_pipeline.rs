//! Loom model of a section's commits finishing while the actor answers: run with
//! `RUSTFLAGS="--cfg registrar_loom" cargo test -p registrar-actors --test loom_pipeline --release`.
//!
//! Two batches are in flight; their commits finish on two threads in any interleaving,
//! and the actor settles whatever may be settled after each. Over every interleaving the
//! callers are answered in decision order, each batch exactly once with its own commit's
//! result, and no batch starts behind a failure until everything in flight has settled.
#![cfg(registrar_loom)]

use loom::sync::{Arc, Mutex};
use loom::thread;
use registrar_actors::StoreError;
use registrar_actors::pipeline::Pipeline;

/// Batches `a` and `b` in flight; `fail_first` fails `a`'s commit. Returns what was
/// settled, in order, and whether a third batch could start while `b` was still open
/// after `a` failed.
fn run(fail_first: bool) -> (Vec<(u8, bool)>, bool) {
    let pipeline = Arc::new(Mutex::new(Pipeline::<u8, ()>::new(3)));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = {
        let mut p = pipeline.lock().unwrap();
        (p.start(0), p.start(1))
    };
    let started_behind_failure = Arc::new(Mutex::new(false));
    let finish = |seq: u64, ok: bool| {
        let pipeline = pipeline.clone();
        let answered = answered.clone();
        let behind = started_behind_failure.clone();
        thread::spawn(move || {
            let mut p = pipeline.lock().unwrap();
            let result = if ok {
                Ok(())
            } else {
                Err(StoreError::Unavailable("down".into()))
            };
            assert!(p.finish(seq, result));
            while let Some((batch, result)) = p.settle() {
                answered.lock().unwrap().push((batch, result.is_ok()));
            }
            if p.is_broken() && p.in_flight() > 0 && p.can_start() {
                *behind.lock().unwrap() = true;
            }
        })
    };
    let first = finish(a, !fail_first);
    let second = finish(b, true);
    first.join().unwrap();
    second.join().unwrap();
    let answered = answered.lock().unwrap().clone();
    let behind = *started_behind_failure.lock().unwrap();
    (answered, behind)
}

#[test]
fn commits_finishing_in_any_order_are_answered_in_decision_order() {
    loom::model(|| {
        let (answered, _) = run(false);
        assert_eq!(answered, vec![(0, true), (1, true)]);
    });
}

#[test]
fn a_failed_commit_is_answered_first_and_stops_new_batches() {
    loom::model(|| {
        let (answered, behind) = run(true);
        assert_eq!(answered, vec![(0, false), (1, true)]);
        assert!(!behind, "a batch could start behind a failure");
    });
}
