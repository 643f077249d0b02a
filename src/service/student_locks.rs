//! One async lock per student with a request in progress, so a student's requests are
//! decided one at a time: the student rules read the whole schedule, and two concurrent
//! enrolls of one student must not both pass the credit limit. A lock rather than a student
//! actor: the critical section is short, almost never contended (one student, one browser)
//! and keeps no state between requests; an entry disappears when nobody holds it.

use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use uuid::Uuid;

/// The per-student locks of one node.
#[derive(Default)]
pub struct StudentLocks {
    locks: DashMap<Uuid, Arc<Mutex<()>>>,
}

impl StudentLocks {
    /// Run `f` holding `student`'s lock.
    pub async fn serialized<T>(&self, student: Uuid, f: impl AsyncFnOnce() -> T) -> T {
        let lock = self.locks.entry(student).or_default().clone();
        let out = {
            let _held = lock.lock().await;
            f().await
        };
        drop(lock);
        self.locks
            .remove_if(&student, |_, l| Arc::strong_count(l) == 1);
        out
    }

    /// Students with a lock entry (held or awaited).
    pub fn len(&self) -> usize {
        self.locks.len()
    }

    /// No student holds or awaits a lock.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_student_at_a_time_and_entries_are_released() {
        let locks = Arc::new(StudentLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let student = Uuid::new_v4();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside) = (locks.clone(), inside.clone());
                tokio::spawn(async move {
                    locks
                        .serialized(student, async || {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                            tokio::task::yield_now().await;
                            inside.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.is_empty());
    }
}
