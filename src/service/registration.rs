//! The registration flow: enroll, drop, swap, capacity changes and schedules.
//!
//! Student-level rules need the student's whole schedule, so each student's requests are
//! serialized by a per-student async lock held across "load schedule → check rules → ask
//! the section actor → commit". A lock (rather than a student actor) because the critical
//! section is short, almost never contended (one student, one browser), and needs no state
//! kept between requests; the map entry disappears when nobody holds it.
//!
//! Section-level decisions (seats, waitlist) belong to the section actors; this service
//! never decides a seat itself.
//!
//! The rule inputs of a student (standing, holds, completed courses, active sections) are
//! cached for [`STUDENT_TTL`]: reading them was one query per enroll, the only per-request
//! database round trip left on the hot path. The cache stays exact for what this node
//! does: the active sections are updated under the student's lock from the section actor's
//! own answers (a seat or waitlist place taken, a drop, `already_enrolled`/`not_enrolled`
//! corrections), a hold added or lifted here forgets the student, and any answer that
//! leaves the outcome unknown (store unavailable, decision pending) forgets it too. The TTL
//! bounds how long a change made elsewhere (SQL by hand, another node) goes unseen; a
//! waitlist promotion does not change the active sections, so it needs no update.

use crate::domain::{SectionFacts, Standing};
use crate::store::{self, DbError, audit, catalog, students};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use registrar_actors::student_rules::{RuleViolation, StudentProfile, Window, check_enroll};
use registrar_actors::{
    CallError, Command, Outcome, Refusal, RequestId, SectionId, SectionRegistry, StudentId,
};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use uuid::Uuid;

/// How long a cached registration window is trusted (admin edits show up within this).
const WINDOW_TTL: Duration = Duration::from_secs(2);

/// How long a student's cached rule inputs are trusted (see the module docs).
pub const STUDENT_TTL: Duration = Duration::from_secs(5);

/// Cached students beyond which expired entries are swept out.
const STUDENT_CACHE_SWEEP: usize = 50_000;

/// Why a registration request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// No such section.
    #[error("section not found")]
    SectionNotFound,
    /// The token's account is gone.
    #[error("student not found")]
    StudentNotFound,
    /// Staff accounts have no standing and cannot register.
    #[error("only students register for sections")]
    NotAStudent,
    /// A student rule refused it (nothing recorded but the audit row).
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    /// The section actor refused it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No decision (overloaded, unavailable, pending).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RegistrationError {
    fn from(e: sqlx::Error) -> Self {
        RegistrationError::Db(e.into())
    }
}

/// An accepted enroll.
#[derive(Clone, Debug)]
pub enum Enrolled {
    /// Holds a seat since `at`.
    Seat {
        /// When the seat was taken.
        at: DateTime<Utc>,
    },
    /// Waits at `position`.
    Waitlist {
        /// 1-based.
        position: u32,
    },
}

/// An accepted drop.
#[derive(Clone, Copy, Debug)]
pub struct Dropped {
    /// Whether the freed seat went to the waitlist head.
    pub promoted: bool,
}

/// One line of a schedule.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleEntry {
    /// Section.
    pub section_id: Uuid,
    /// Course code.
    pub course_code: String,
    /// Section code.
    pub section_code: String,
    /// Credits.
    pub credits: u32,
    /// Waitlist position (waitlisted entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// When the seat was taken (enrolled entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<DateTime<Utc>>,
}

/// A student's schedule.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Sections with a seat.
    pub enrolled: Vec<ScheduleEntry>,
    /// Sections waited for.
    pub waitlisted: Vec<ScheduleEntry>,
    /// Credits of the enrolled sections.
    pub credits: u32,
}

/// The registration service (see module docs).
pub struct RegistrationService {
    pool: PgPool,
    registry: Arc<SectionRegistry>,
    /// Immutable facts of sections, loaded once.
    facts: DashMap<Uuid, Arc<SectionFacts>>,
    /// Windows by (term, standing), with the time they were read.
    windows: DashMap<(Uuid, Standing), (Instant, Option<Window>)>,
    /// Rule inputs by student, with the time they were read (see the module docs).
    students: DashMap<Uuid, (Instant, students::RuleInputs)>,
    /// One async lock per student with a request in progress.
    locks: DashMap<Uuid, Arc<Mutex<()>>>,
    /// Group-committed audit rows of rule refusals.
    refusals: audit::RefusalLog,
}

impl RegistrationService {
    /// A service over `pool` and `registry`.
    pub fn new(pool: PgPool, registry: Arc<SectionRegistry>) -> Self {
        Self {
            refusals: audit::RefusalLog::spawn(pool.clone()),
            pool,
            registry,
            facts: DashMap::new(),
            windows: DashMap::new(),
            students: DashMap::new(),
            locks: DashMap::new(),
        }
    }

    /// The section registry.
    pub fn registry(&self) -> &Arc<SectionRegistry> {
        &self.registry
    }

    /// Forget cached windows (after an admin edit).
    pub fn invalidate_windows(&self) {
        self.windows.clear();
    }

    /// Forget the cached rule inputs of `student` (after an admin edit, e.g. a hold).
    pub fn invalidate_student(&self, student: Uuid) {
        self.students.remove(&student);
    }

    /// The rule inputs of `student`: cached, or read (and cached) when absent or expired.
    async fn rule_inputs(&self, student: Uuid) -> Result<students::RuleInputs, RegistrationError> {
        if let Some(entry) = self.students.get(&student)
            && entry.0.elapsed() < STUDENT_TTL
        {
            return Ok(entry.1.clone());
        }
        let inputs = students::rule_inputs(&self.pool, student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        if self.students.len() >= STUDENT_CACHE_SWEEP {
            self.students
                .retain(|_, (at, _)| at.elapsed() < STUDENT_TTL);
        }
        self.students
            .insert(student, (Instant::now(), inputs.clone()));
        Ok(inputs)
    }

    /// Record what a section actor's answer says about `student`'s membership of `section`
    /// (called under the student's lock).
    fn note_membership<T>(
        &self,
        student: Uuid,
        section: Uuid,
        result: &Result<T, RegistrationError>,
        joining: bool,
    ) {
        let member = match result {
            Ok(_) => Some(joining),
            Err(RegistrationError::Refused(
                Refusal::AlreadyEnrolled | Refusal::AlreadyWaitlisted,
            )) => Some(true),
            Err(RegistrationError::Refused(Refusal::NotEnrolled)) => Some(false),
            // Full, or refused before the actor: membership unchanged.
            Err(RegistrationError::Refused(_) | RegistrationError::Rule(_)) => return,
            // Unknown outcome: read the database next time.
            Err(_) => None,
        };
        let Some(member) = member else {
            self.invalidate_student(student);
            return;
        };
        if let Some(mut entry) = self.students.get_mut(&student) {
            let active = &mut entry.1.active_sections;
            active.retain(|s| *s != section);
            if member {
                active.push(section);
            }
        }
    }

    /// Run `f` holding `student`'s lock.
    async fn serialized<T>(&self, student: Uuid, f: impl AsyncFnOnce() -> T) -> T {
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

    /// The fixed facts of `section`.
    pub async fn facts(&self, section: Uuid) -> Result<Arc<SectionFacts>, RegistrationError> {
        if let Some(f) = self.facts.get(&section) {
            return Ok(f.clone());
        }
        let found = catalog::section_facts(&self.pool, &[section]).await?;
        let facts = Arc::new(
            found
                .into_iter()
                .next()
                .ok_or(RegistrationError::SectionNotFound)?,
        );
        self.facts.insert(section, facts.clone());
        Ok(facts)
    }

    async fn facts_many(&self, ids: &[Uuid]) -> Result<Vec<Arc<SectionFacts>>, RegistrationError> {
        let missing: Vec<Uuid> = ids
            .iter()
            .filter(|id| !self.facts.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            for f in catalog::section_facts(&self.pool, &missing).await? {
                self.facts.insert(f.id().0, Arc::new(f));
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.facts.get(id).map(|f| f.clone()))
            .collect())
    }

    async fn window(
        &self,
        term: Uuid,
        standing: Standing,
    ) -> Result<Option<Window>, RegistrationError> {
        if let Some(entry) = self.windows.get(&(term, standing))
            && entry.0.elapsed() < WINDOW_TTL
        {
            return Ok(entry.1);
        }
        let w = catalog::window(&self.pool, term, standing).await?;
        self.windows.insert((term, standing), (Instant::now(), w));
        Ok(w)
    }

    /// Load the student and check the rules for taking `target` (dropping `replacing`).
    async fn check_rules(
        &self,
        student: Uuid,
        target: &SectionFacts,
        replacing: Option<Uuid>,
        request: RequestId,
    ) -> Result<Vec<Uuid>, RegistrationError> {
        let inputs = self.rule_inputs(student).await?;
        let standing = inputs.standing.ok_or(RegistrationError::NotAStudent)?;
        let window = self.window(target.term_id, standing).await?;
        let schedule = self
            .facts_many(&inputs.active_sections)
            .await?
            .into_iter()
            .filter(|f| f.term_id == target.term_id)
            .map(|f| f.offered.clone())
            .collect();
        let profile = StudentProfile {
            holds: inputs.holds,
            max_credits: inputs.max_credits,
            completed: inputs.completed,
            schedule,
        };
        let replacing = replacing.map(SectionId);
        if let Err(violation) =
            check_enroll(&profile, &target.offered, window, Utc::now(), replacing)
        {
            let refusal = audit::Refusal {
                request: request.0,
                student,
                section: target.id().0,
                action: "enroll",
                code: violation.code(),
            };
            self.refusals.record(refusal).await?;
            return Err(violation.into());
        }
        Ok(inputs.active_sections)
    }

    /// Enroll `student` in `section` (seat, else waitlist).
    pub async fn enroll(
        &self,
        student: Uuid,
        section: Uuid,
        request: RequestId,
    ) -> Result<Enrolled, RegistrationError> {
        self.serialized(student, async || {
            let target = self.facts(section).await?;
            self.check_rules(student, &target, None, request).await?;
            let result = self.enroll_in_actor(student, section, request, false).await;
            self.note_membership(student, section, &result, true);
            result
        })
        .await
    }

    async fn enroll_in_actor(
        &self,
        student: Uuid,
        section: Uuid,
        request: RequestId,
        seat_only: bool,
    ) -> Result<Enrolled, RegistrationError> {
        let command = Command::Enroll {
            student: StudentId(student),
            request,
            seat_only,
        };
        let reply = self.registry.call(SectionId(section), command).await?;
        match reply.outcome? {
            Outcome::Enrolled => Ok(Enrolled::Seat {
                at: reply.decided_at,
            }),
            Outcome::Waitlisted { position } => Ok(Enrolled::Waitlist { position }),
            other => unreachable_outcome(other),
        }
    }

    async fn drop_in_actor(
        &self,
        student: Uuid,
        section: Uuid,
        request: RequestId,
    ) -> Result<Dropped, RegistrationError> {
        let command = Command::Drop {
            student: StudentId(student),
            request,
        };
        let reply = self.registry.call(SectionId(section), command).await?;
        match reply.outcome? {
            Outcome::Dropped { promoted, .. } => Ok(Dropped {
                promoted: promoted.is_some(),
            }),
            other => unreachable_outcome(other),
        }
    }

    /// Drop `student` from `section` (seat or waitlist place).
    pub async fn drop_enrollment(
        &self,
        student: Uuid,
        section: Uuid,
        request: RequestId,
    ) -> Result<Dropped, RegistrationError> {
        self.serialized(student, async || {
            self.facts(section).await?;
            let result = self.drop_in_actor(student, section, request).await;
            self.note_membership(student, section, &result, false);
            result
        })
        .await
    }

    /// Take a seat in `add` and, only if that succeeded, leave `drop`.
    ///
    /// The add asks for a seat only (no waitlisting); the student holds both seats for the
    /// moment between the two commits. Should the drop then fail (store down), the add is
    /// undone, so the student ends with exactly one of the two.
    pub async fn swap(
        &self,
        student: Uuid,
        drop: Uuid,
        add: Uuid,
        request: RequestId,
    ) -> Result<(Enrolled, Dropped), RegistrationError> {
        self.serialized(student, async || {
            let result = self.swap_locked(student, drop, add, request).await;
            // Two sections, maybe an undo: read the database next time.
            self.invalidate_student(student);
            result
        })
        .await
    }

    async fn swap_locked(
        &self,
        student: Uuid,
        drop: Uuid,
        add: Uuid,
        request: RequestId,
    ) -> Result<(Enrolled, Dropped), RegistrationError> {
        let target = self.facts(add).await?;
        self.facts(drop).await?;
        let active = self
            .check_rules(student, &target, Some(drop), request)
            .await?;
        if !active.contains(&drop) {
            return Err(Refusal::NotEnrolled.into());
        }
        let add_request = derived(request, "add");
        let drop_request = derived(request, "drop");
        let enrolled = self
            .enroll_in_actor(student, add, add_request, true)
            .await?;
        let mut last = None;
        for attempt in 0..3u64 {
            match self.drop_in_actor(student, drop, drop_request).await {
                Ok(dropped) => return Ok((enrolled, dropped)),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
        }
        tracing::error!(%student, %add, %drop, "swap: drop failed after add; undoing the add");
        let undo = derived(request, "undo");
        if let Err(e) = self.drop_in_actor(student, add, undo).await {
            tracing::error!(%student, %add, error = %e, "swap: undo failed; student holds both sections");
        }
        Err(
            last.unwrap_or(RegistrationError::Call(CallError::Unavailable(
                "swap".into(),
            ))),
        )
    }

    /// Change a section's capacity (admin); returns the promoted students.
    pub async fn set_capacity(
        &self,
        section: Uuid,
        capacity: u32,
    ) -> Result<Vec<StudentId>, RegistrationError> {
        self.facts(section).await?;
        let command = Command::SetCapacity {
            capacity,
            request: RequestId::new_v4(),
        };
        let reply = self.registry.call(SectionId(section), command).await?;
        match reply.outcome? {
            Outcome::CapacityChanged { promoted } => Ok(promoted),
            other => unreachable_outcome(other),
        }
    }

    /// The student's schedule.
    pub async fn schedule(&self, student: Uuid) -> Result<Schedule, RegistrationError> {
        let rows = store::students::schedule(&self.pool, student).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let facts = self.facts_many(&ids).await?;
        let mut out = Schedule {
            enrolled: vec![],
            waitlisted: vec![],
            credits: 0,
        };
        for (section, status, position, enrolled_at) in rows {
            let Some(f) = facts.iter().find(|f| f.id().0 == section) else {
                continue;
            };
            let entry = ScheduleEntry {
                section_id: section,
                course_code: f.offered.course_code.clone(),
                section_code: f.section_code.clone(),
                credits: f.offered.credits,
                position: position.map(|p| p as u32),
                enrolled_at,
            };
            if status == "enrolled" {
                out.credits += entry.credits;
                out.enrolled.push(entry);
            } else {
                out.waitlisted.push(entry);
            }
        }
        Ok(out)
    }
}

/// A sub-request id derived from a request (the halves of a swap).
fn derived(request: RequestId, part: &str) -> RequestId {
    RequestId::from_idempotency_key(StudentId(request.0), part)
}

fn unreachable_outcome<T>(outcome: Outcome) -> Result<T, RegistrationError> {
    tracing::error!(?outcome, "section actor answered a different command");
    Err(CallError::Unavailable("unexpected outcome".into()).into())
}
