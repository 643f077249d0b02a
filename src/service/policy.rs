//! The admin's edits of registration policy: a student's attributes, a section's reserved
//! seat pools, time tickets. Attribute and ticket edits commit with their notice to every
//! node's rule cache (as `service::admin` does for holds); pools are replaced by the
//! section's own actor, so the seats they hold back change between two of its decisions
//! and the commit that records them is fenced like any other.

use super::admin::AdminError;
use super::registration::{RegistrationError, RegistrationService, unreachable_outcome};
use crate::resources::{
    NewPool, NewTimeTicket, StudentPatch, StudentView, TicketRule, TimeTicketView, pools_from,
};
use crate::store::cluster::{self as cluster_rows, Notice};
use crate::store::{catalog, students, tickets};
use registrar_actors::{CallError, Command, Outcome, RequestId, SectionId, StoreError, StudentId};
use uuid::Uuid;

impl RegistrationService {
    /// Change `student`'s standing, credit limit, majors, program or cohort.
    pub async fn update_student(
        &self,
        student: Uuid,
        patch: &StudentPatch,
    ) -> Result<StudentView, AdminError> {
        let mut tx = self.pool.begin().await?;
        let view = students::update(&mut *tx, student, patch)
            .await?
            .ok_or(AdminError::StudentNotFound)?;
        super::eligibility::mark_stale(&mut *tx, student).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
        self.recheck_after_change(student).await;
        Ok(view)
    }

    /// Set `student`'s time ticket in `term`.
    pub async fn set_ticket(
        &self,
        term: Uuid,
        student: Uuid,
        ticket: &NewTimeTicket,
    ) -> Result<TimeTicketView, AdminError> {
        let mut tx = self.pool.begin().await?;
        if !catalog::term_exists(&mut *tx, term).await? {
            return Err(AdminError::TermNotFound);
        }
        if students::get(&mut *tx, student).await?.is_none() {
            return Err(AdminError::StudentNotFound);
        }
        let saved = tickets::upsert(&mut *tx, term, student, ticket).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
        Ok(saved)
    }

    /// Assign time tickets in `term` by `rule` (see [`tickets::assign_by_credits`]); every
    /// node's rule cache forgets every student (one notice per student would flood the
    /// channel). Returns how many students got a ticket.
    pub async fn assign_tickets(&self, term: Uuid, rule: &TicketRule) -> Result<u64, AdminError> {
        let mut tx = self.pool.begin().await?;
        if !catalog::term_exists(&mut *tx, term).await? {
            return Err(AdminError::TermNotFound);
        }
        let assigned = tickets::assign_by_credits(&mut *tx, term, rule).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::AllStudents).await?;
        tx.commit().await?;
        self.cache.forget_all_students();
        Ok(assigned)
    }

    /// Remove `student`'s time ticket in `term`.
    pub async fn remove_ticket(&self, term: Uuid, student: Uuid) -> Result<(), AdminError> {
        let mut tx = self.pool.begin().await?;
        if !tickets::remove(&mut *tx, term, student).await? {
            return Err(AdminError::TicketNotFound);
        }
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
        Ok(())
    }

    /// Release the reserved pools and end the offers of this node's sections whose time
    /// (by the database clock) has come and that no commit has settled: a section whose
    /// actor is active does it by its own timers, this catches the ones passivated or not
    /// activated since (after a restart, a move, a failover). Returns how many commands
    /// were decided.
    pub async fn settle_due_times(&self) -> Result<usize, RegistrationError> {
        let node = self.router().node().id.clone();
        let due = crate::store::sections::due_sections(&self.pool, &node, 100)
            .await
            .map_err(|e| CallError::Unavailable(e.to_string()))?;
        let mut settled = 0;
        for (section, now) in due {
            let commands = [
                Command::ReleaseReserves {
                    now,
                    request: RequestId::new_v4(),
                },
                Command::ExpireOffers {
                    now,
                    request: RequestId::new_v4(),
                },
            ];
            for command in commands {
                match self.router().call(SectionId(section), command, None).await {
                    Ok(routed) if routed.reply.outcome.is_ok() => settled += 1,
                    Ok(routed) => {
                        tracing::error!(section_id = %section, outcome = ?routed.reply.outcome, "a due pool or offer was not settled");
                    }
                    Err(e) => {
                        tracing::debug!(section_id = %section, error = %e, "due pool or offer not settled yet");
                    }
                }
            }
        }
        Ok(settled)
    }

    /// Replace `section`'s reserved pools (checked by [`crate::resources::check_pools`]) through
    /// its actor; the waitlisted students promoted into seats the pools no longer hold back.
    /// A pool for the same attribute as an existing one keeps its id, so the students in
    /// it stay counted.
    pub async fn set_reserves(
        &self,
        section: Uuid,
        pools: &[NewPool],
    ) -> Result<Vec<StudentId>, RegistrationError> {
        self.facts(section).await?;
        let existing = crate::store::sections::pools(&self.pool, SectionId(section))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => RegistrationError::SectionNotFound,
                e => CallError::Unavailable(e.to_string()).into(),
            })?;
        let command = Command::SetReserves {
            pools: pools_from(pools, &existing),
            request: RequestId::new_v4(),
        };
        match self.decide_admin(section, command).await? {
            Outcome::ReservesChanged { promoted } => Ok(promoted),
            other => unreachable_outcome(other),
        }
    }
}
