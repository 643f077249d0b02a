//! A swap: take a seat in one section and, only if that succeeded, leave another, under
//! the student's lock like every registration request (see `registration`).

use super::idempotency::part_of;
use super::registration::{Dropped, Enrolled, RegistrationError, RegistrationService, SeatRequest};
use registrar_actors::{CallError, Refusal, RequestId};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A swap: leave `drop` only if a seat in `add` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Swap {
    /// The student.
    pub student: Uuid,
    /// The section to leave.
    pub drop: Uuid,
    /// The section to join (a seat, not a waitlist place).
    pub add: Uuid,
    /// The request (its parts get ids derived from it).
    pub request: RequestId,
}

impl RegistrationService {
    /// Take a seat in `add` and, only if that succeeded, leave `drop`.
    ///
    /// The add asks for a seat only (no waitlisting); the student holds both seats for the
    /// moment between the two commits. Should the drop then fail (store down), the add is
    /// undone, so the student ends with exactly one of the two.
    pub async fn swap(
        self: &Arc<Self>,
        swap: Swap,
    ) -> Result<(Enrolled, Dropped), RegistrationError> {
        self.detached(swap.student, move |this: Arc<Self>| async move {
            this.locks
                .serialized(swap.student, async || {
                    let result = this.swap_locked(swap).await;
                    // Two sections, maybe an undo: read the database next time.
                    this.cache.invalidate_student(swap.student);
                    result
                })
                .await
        })
        .await
    }

    async fn swap_locked(&self, swap: Swap) -> Result<(Enrolled, Dropped), RegistrationError> {
        let Swap {
            student,
            drop,
            add,
            request,
        } = swap;
        let target = self.facts(add).await?;
        self.facts(drop).await?;
        let active = self
            .check_rules(student, &target, Some(drop), request)
            .await?;
        if !active.contains(&drop) {
            return Err(Refusal::NotEnrolled.into());
        }
        let part = |section, name| SeatRequest {
            student,
            section,
            request: part_of(request, name),
        };
        let enrolled = self.enroll_in_actor(part(add, "add"), true).await?;
        let mut last = None;
        for attempt in 0..3u64 {
            match self.drop_in_actor(part(drop, "drop")).await {
                Ok(dropped) => return Ok((enrolled, dropped)),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
        }
        tracing::error!(%student, %add, %drop, "swap: drop failed after add; undoing the add");
        if let Err(e) = self.drop_in_actor(part(add, "undo")).await {
            tracing::error!(%student, %add, error = %e, "swap: undo failed; student holds both sections");
        }
        Err(
            last.unwrap_or(RegistrationError::Call(CallError::Unavailable(
                "swap".into(),
            ))),
        )
    }
}
