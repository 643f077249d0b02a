//! The audit trail (`registration_attempts`): how its outcomes are spelled
//! ([`AttemptOutcome`]), and the refusals decided outside the section actors (student
//! rules), written with group commit by [`RefusalLog`]. Decisions of the section actors
//! are audited in their own batch commit (`store::sections`).

use super::text_enum::text_enum;
use super::{DbError, DbResult};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

text_enum! {
    /// How an attempt on record ended (`registration_attempts.outcome`).
    AttemptOutcome {
        /// A seat was taken.
        Enrolled = "enrolled",
        /// A waitlist place was taken.
        Waitlisted = "waitlisted",
        /// A seat or waitlist place was left.
        Dropped = "dropped",
        /// A capacity change (admin).
        CapacityChanged = "capacity_changed",
        /// The reserved seat pools changed (an admin's edit, or a pool's release time).
        ReservesChanged = "reserves_changed",
        /// Offers expired (the seats went to the next students).
        OffersExpired = "offers_expired",
        /// A waiting student is skipped at promotion, or no longer.
        BlockChanged = "block_changed",
        /// A seat was held for a decision over several sections.
        Held = "held",
        /// A held seat became an enrollment.
        Confirmed = "confirmed",
        /// A held seat was given back (or a hold that never came was refused in advance).
        Released = "released",
        /// Refused (its code beside it).
        Refused = "refused",
    }
}

/// One refused attempt for the audit trail.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The request.
    pub request: Uuid,
    /// Who asked.
    pub student: Uuid,
    /// For which section.
    pub section: Uuid,
    /// `enroll`, `swap`, ...
    pub action: &'static str,
    /// The reason code.
    pub code: &'static str,
}

type Pending = (Refusal, oneshot::Sender<DbResult<()>>);

/// Group commit of refusal audit rows: refusals decided by the student rules (half the
/// answers in a registration rush) are written by one task, many per transaction, and
/// each caller is answered once its row has committed. One fsync per group instead of one
/// per refused request.
#[derive(Clone)]
pub struct RefusalLog {
    tx: mpsc::Sender<Pending>,
}

impl RefusalLog {
    /// Start the writer on `pool`; it ends when every `RefusalLog` clone is dropped.
    pub fn spawn(pool: PgPool) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(10_000);
        tokio::spawn(async move {
            let mut group: Vec<Pending> = Vec::with_capacity(512);
            while rx.recv_many(&mut group, 512).await > 0 {
                let result = write_refusals(&pool, group.iter().map(|(r, _)| r))
                    .await
                    .map_err(DbError::from);
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Record `refusal`; returns once it is committed.
    pub async fn record(&self, refusal: Refusal) -> DbResult<()> {
        let (reply, committed) = oneshot::channel();
        let stopped = || DbError::Unavailable("the refusal audit writer stopped".into());
        self.tx
            .send((refusal, reply))
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?.inspect_err(|e| {
            tracing::warn!(error = %e, "refusal audit write failed");
        })
    }
}

async fn write_refusals<'a>(
    pool: &PgPool,
    rows: impl Iterator<Item = &'a Refusal>,
) -> Result<(), sqlx::Error> {
    let (mut requests, mut students, mut sections, mut actions, mut codes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for r in rows {
        requests.push(r.request);
        students.push(r.student);
        sections.push(r.section);
        actions.push(r.action);
        codes.push(r.code);
    }
    sqlx::query(
        "INSERT INTO registration_attempts (request_id, student_id, section_id, action, outcome, code)
         SELECT r, s, x, a, 'refused', c FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) AS t(r, s, x, a, c)",
    )
    .bind(&requests)
    .bind(&students)
    .bind(&sections)
    .bind(&actions)
    .bind(&codes)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::AttemptOutcome;

    #[test]
    fn an_outcome_has_one_name_in_sql_and_in_json() {
        for outcome in [
            AttemptOutcome::Enrolled,
            AttemptOutcome::Waitlisted,
            AttemptOutcome::Dropped,
            AttemptOutcome::CapacityChanged,
            AttemptOutcome::ReservesChanged,
            AttemptOutcome::OffersExpired,
            AttemptOutcome::BlockChanged,
            AttemptOutcome::Held,
            AttemptOutcome::Confirmed,
            AttemptOutcome::Released,
            AttemptOutcome::Refused,
        ] {
            let json = serde_json::to_value(outcome).unwrap();
            assert_eq!(json, outcome.as_str(), "{outcome:?}");
            assert_eq!(outcome.as_str().parse::<AttemptOutcome>(), Ok(outcome));
        }
    }
}
