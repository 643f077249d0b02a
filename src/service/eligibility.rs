//! Waiting students whose rules no longer let them take a seat (a hold put on them, a lower
//! credit limit, other attributes, a completed course taken away) are skipped at
//! promotion and keep their place, as PeopleSoft's waitlist job skips them; they are back
//! in line once the rules pass again. Waitlisted sections count like enrolled ones in the
//! rules (credits, times), so only such changes of the student can make a waiting place
//! ineligible: each marks the student's waitlists stale in its own transaction
//! ([`mark_stale`]), then the node that made it judges them at once; every node's finisher
//! sweep judges the students still marked (a section owner that could not answer, a node
//! that died in between). The judgement is [`check_accept`]'s, the rules an offer's
//! acceptance passes; each section's actor applies it ([`Command::SetBlocked`]) between
//! two of its decisions, so a promotion never races it.

use super::registration::{RegistrationError, RegistrationService};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::check_accept;
use registrar_actors::{Command, Refusal, RequestId, StudentId};
use uuid::Uuid;

/// Mark `student`'s waitlist places to be judged again (in the transaction of the change).
pub async fn mark_stale<'e>(db: impl sqlx::PgExecutor<'e>, student: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE students SET waitlists_stale_at = clock_timestamp() WHERE id = $1")
        .bind(student)
        .execute(db)
        .await?;
    Ok(())
}

impl RegistrationService {
    /// Judge `student`'s waitlist places again and tell each section's actor whether to
    /// skip them; the mark is cleared when every section answered. Returns how many
    /// places changed.
    pub async fn recheck_waitlists(&self, student: Uuid) -> Result<usize, RegistrationError> {
        let marked: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT waitlists_stale_at FROM students WHERE id = $1")
                .bind(student)
                .fetch_optional(&self.pool)
                .await
                .map_err(crate::store::DbError::from)?;
        let Some(marked) = marked else {
            return Ok(0);
        };
        let waiting: Vec<(Uuid, Option<String>)> = sqlx::query_as(
            "SELECT section_id, blocked_reason FROM enrollments
              WHERE student_id = $1 AND status = 'waitlisted'",
        )
        .bind(student)
        .fetch_all(&self.pool)
        .await
        .map_err(crate::store::DbError::from)?;
        // The rules' inputs as committed now, not as cached.
        self.cache.forget_student(student);
        let mut changed = 0;
        let mut answered = true;
        for (section, current) in waiting {
            let facts = self.facts(section).await?;
            let (profile, _, _) = self.profile(student, facts.term_id).await?;
            let judged = check_accept(&profile, &facts.offered)
                .err()
                .map(|v| v.code().to_string());
            if judged == current {
                continue;
            }
            let command = Command::SetBlocked {
                student: StudentId(student),
                reason: judged,
                request: RequestId::new_v4(),
            };
            match self.decide_admin(section, command).await {
                Ok(_) => changed += 1,
                // Promoted, offered or gone meanwhile: nothing to skip.
                Err(RegistrationError::Refused(Refusal::NotEnrolled)) => {}
                Err(e) => {
                    tracing::warn!(student_id = %student, section_id = %section, error = %e, "a waitlist place was not judged again yet");
                    answered = false;
                }
            }
        }
        if answered && let Some(at) = marked {
            sqlx::query(
                "UPDATE students SET waitlists_stale_at = NULL
                  WHERE id = $1 AND waitlists_stale_at = $2",
            )
            .bind(student)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(crate::store::DbError::from)?;
        }
        Ok(changed)
    }

    /// Judge again the waitlist places of up to `limit` students still marked (the
    /// finisher's sweep); how many places changed.
    pub async fn recheck_stale_waitlists(&self, limit: i64) -> Result<usize, RegistrationError> {
        let stale: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM students WHERE waitlists_stale_at IS NOT NULL
              ORDER BY waitlists_stale_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(crate::store::DbError::from)?;
        let mut changed = 0;
        for student in stale {
            changed += self.recheck_waitlists(student).await?;
        }
        Ok(changed)
    }
}
