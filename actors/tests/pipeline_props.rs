//! Property tests of the order in which a section's batches in flight are answered
//! ([`Pipeline`]): over random runs of starts, commits finishing in any order, failures
//! and restarts,
//! - batches are settled exactly once each, in the order they were started, and never
//!   before every earlier batch finished;
//! - each settles with its own commit's result;
//! - no more than the depth is ever in flight, and after a failure nothing starts until
//!   every batch in flight has settled and the pipeline restarted.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::StoreError;
use registrar_actors::pipeline::Pipeline;
use std::collections::BTreeMap;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// One step of a run.
#[derive(Clone, Debug)]
enum Step {
    /// Start a batch if one may start.
    Start,
    /// Finish the in-flight batch at this index (modulo), failing it if the flag says so.
    Finish(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Start),
        3 => (any::<usize>(), prop::bool::weighted(0.15)).prop_map(|(i, f)| Step::Finish(i, f)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn batches_settle_once_in_start_order_with_their_own_result(
        depth in 1usize..5,
        steps in prop::collection::vec(step(), 1..120),
    ) {
        let mut p: Pipeline<u64, u64> = Pipeline::new(depth);
        // Started and not settled, by number: whether it finished, and failed.
        let mut open: BTreeMap<u64, Option<bool>> = BTreeMap::new();
        let mut started = 0u64;
        let mut settled = Vec::new();
        let mut failed_since_restart = false;
        for step in steps {
            match step {
                Step::Start => {
                    if p.can_start() {
                        prop_assert!(!failed_since_restart, "started behind a failure");
                        let seq = p.start(started);
                        prop_assert_eq!(seq, started);
                        open.insert(seq, None);
                        started += 1;
                        prop_assert!(p.in_flight() <= depth);
                    } else {
                        prop_assert!(failed_since_restart || p.in_flight() == depth);
                    }
                }
                Step::Finish(i, fail) => {
                    let waiting: Vec<u64> =
                        open.iter().filter(|(_, r)| r.is_none()).map(|(s, _)| *s).collect();
                    if waiting.is_empty() {
                        continue;
                    }
                    let seq = waiting[i % waiting.len()];
                    let result = if fail {
                        failed_since_restart = true;
                        Err(StoreError::Unavailable(format!("batch {seq}")))
                    } else {
                        Ok(seq * 10)
                    };
                    prop_assert!(p.finish(seq, result));
                    prop_assert!(!p.finish(seq, Ok(0)), "finished twice");
                    open.insert(seq, Some(fail));
                }
            }
            while let Some((batch, result)) = p.settle() {
                let (&first, _) = open.iter().next().expect("settled a batch never started");
                prop_assert_eq!(batch, first, "settled out of order");
                let fail = open.remove(&first).flatten();
                prop_assert!(fail.is_some(), "settled before it finished");
                match result {
                    Ok(c) => prop_assert!(fail == Some(false) && c == batch * 10),
                    Err(e) => {
                        let own = StoreError::Unavailable(format!("batch {}", batch));
                        prop_assert!(fail == Some(true) && e == own);
                    }
                }
                settled.push(batch);
            }
            // Whatever is left open has an unfinished batch at its front.
            if let Some((_, front)) = open.iter().next() {
                prop_assert!(front.is_none(), "a finished front batch was not settled");
            }
            if p.needs_recovery() {
                prop_assert!(open.is_empty() && failed_since_restart);
                p.restart();
                failed_since_restart = false;
            }
        }
        let expected: Vec<u64> = (0..started).filter(|s| !open.contains_key(s)).collect();
        prop_assert_eq!(settled, expected);
    }
}
