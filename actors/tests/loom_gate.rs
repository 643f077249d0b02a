//! Loom model of the admission gate: run with
//! `RUSTFLAGS="--cfg registrar_loom" cargo test -p registrar-actors --test loom_gate --release`.
//! Checks, over every interleaving, that the bound is never exceeded, that every place comes
//! back, and that passivation (close at zero) never races a command that got a permit.
#![cfg(registrar_loom)]

use loom::sync::Arc;
use loom::thread;
use registrar_actors::gate::{AdmissionGate, Refused};

#[test]
fn bound_never_exceeded_and_all_places_return() {
    loom::model(|| {
        let gate = Arc::new(AdmissionGate::new(1));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let gate = gate.clone();
                thread::spawn(move || {
                    if gate.try_enter().is_ok() {
                        assert!(gate.in_flight() <= 1, "bound exceeded");
                        gate.leave();
                        true
                    } else {
                        false
                    }
                })
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        assert!(
            admitted >= 1,
            "one of two commands must get the single place"
        );
        assert_eq!(gate.in_flight(), 0, "a place was not returned");
    });
}

#[test]
fn close_never_races_an_admitted_command() {
    loom::model(|| {
        let gate = Arc::new(AdmissionGate::new(4));
        let g2 = gate.clone();
        let sender = thread::spawn(move || match g2.try_enter() {
            Ok(()) => {
                // While we hold the place the gate must be open.
                assert!(!g2.is_closed(), "closed while a command was admitted");
                g2.leave();
                true
            }
            Err(Refused::Closed) => false,
            Err(Refused::Full) => panic!("bound of 4 reached by one command"),
        });
        let closed = gate.try_close();
        let admitted = sender.join().unwrap();
        if closed {
            // Either the command came first and left, or it was refused as closed.
            assert_eq!(gate.in_flight(), 0);
        } else {
            assert!(
                admitted,
                "close may only fail because a command held a place"
            );
        }
    });
}
