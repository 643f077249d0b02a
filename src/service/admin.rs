//! The admin's edits of student rule inputs (holds, registration windows, add/drop
//! deadlines, sections and their links, a course's credit range and grading bases), one
//! function per use case. Each edit and the notice that tells every node's rule cache about it
//! commit in one transaction (PostgreSQL delivers a NOTIFY only at commit), so no node can
//! miss an edit that was made, or hear of one that was not; this node's own cache forgets
//! at once, without waiting for its notice to come back.

use super::registration::RegistrationService;
use crate::resources::{
    Course, CourseGradingPatch, Hold, Invalid, LinkEnd, NewSection, NewWindow, RegistrationWindow,
    TermDeadlines, check_component, check_link_ids, check_restrictions, link_pairs,
};
use crate::store::cluster::{self as cluster_rows, Notice};
use crate::store::{DbError, catalog, students};
use registrar_actors::student_rules::Meeting;
use uuid::Uuid;

/// Why an admin edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such student.
    #[error("no such student")]
    StudentNotFound,
    /// No such hold on that student.
    #[error("no such hold on this student")]
    HoldNotFound,
    /// No such permit.
    #[error("no such permit")]
    PermitNotFound,
    /// No such term.
    #[error("no such term")]
    TermNotFound,
    /// The student has no time ticket in that term.
    #[error("no time ticket for this student in this term")]
    TicketNotFound,
    /// No such section.
    #[error("no such section")]
    SectionNotFound,
    /// A section of a course that does not exist.
    #[error("no course {0}")]
    UnknownCourse(String),
    /// No such course (the course edited).
    #[error("no such course")]
    CourseNotFound,
    /// Students' places would fall outside a course's new credit range or bases.
    #[error("{0}")]
    OptionsInUse(String),
    /// A link to a section that does not exist.
    #[error("links: no section {0}")]
    UnknownSection(Uuid),
    /// A field breaks a rule over stored records (a link across courses, a component the
    /// course does not have).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed (nothing was changed).
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

impl RegistrationService {
    /// Judge `student`'s waitlist places again after a change of their rule inputs was
    /// committed (with its mark): a failure here is left to the finisher's sweep, which
    /// judges every student still marked, so the change itself stands.
    pub(super) async fn recheck_after_change(&self, student: Uuid) {
        if let Err(e) = self.recheck_waitlists(student).await {
            tracing::warn!(student_id = %student, error = %e, "waitlist places left to the sweep");
        }
    }

    /// Put a hold on `student`.
    pub async fn add_hold(&self, student: Uuid, reason: &str) -> Result<Hold, AdminError> {
        let mut tx = self.pool.begin().await?;
        if students::get(&mut *tx, student).await?.is_none() {
            return Err(AdminError::StudentNotFound);
        }
        let hold = students::add_hold(&mut *tx, student, reason).await?;
        super::eligibility::mark_stale(&mut *tx, student).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
        self.recheck_after_change(student).await;
        Ok(hold)
    }

    /// Lift the hold `hold` of `student`.
    pub async fn remove_hold(&self, student: Uuid, hold: Uuid) -> Result<(), AdminError> {
        let mut tx = self.pool.begin().await?;
        if !students::remove_hold(&mut *tx, student, hold).await? {
            return Err(AdminError::HoldNotFound);
        }
        super::eligibility::mark_stale(&mut *tx, student).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
        self.recheck_after_change(student).await;
        Ok(())
    }

    /// Create or replace `term`'s window for one standing.
    pub async fn set_window(
        &self,
        term: Uuid,
        window: &NewWindow,
    ) -> Result<RegistrationWindow, AdminError> {
        let mut tx = self.pool.begin().await?;
        if !catalog::term_exists(&mut *tx, term).await? {
            return Err(AdminError::TermNotFound);
        }
        let saved = catalog::upsert_window(&mut *tx, term, window).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Windows).await?;
        tx.commit().await?;
        self.cache.forget_windows();
        Ok(saved)
    }

    /// Replace `term`'s add/drop deadlines (`deadlines` has passed
    /// [`TermDeadlines::validate`]); every node's cached deadlines are forgotten with the
    /// windows (the same notice: a term's calendar changed).
    pub async fn set_deadlines(
        &self,
        term: Uuid,
        deadlines: &TermDeadlines,
    ) -> Result<TermDeadlines, AdminError> {
        let mut tx = self.pool.begin().await?;
        let Some(saved) = catalog::set_deadlines(&mut *tx, term, deadlines).await? else {
            return Err(AdminError::TermNotFound);
        };
        cluster_rows::notify_rules(&mut *tx, Notice::Windows).await?;
        tx.commit().await?;
        self.cache.forget_windows();
        Ok(saved)
    }

    /// Create a section of a course, linked to the sections `section.links` names, in one
    /// transaction: the section's component must be one of its course's, and each link
    /// must join it to a section of the same course and term, one of the two the course's
    /// primary component. `section` has passed [`NewSection::validate`].
    pub async fn create_section(
        &self,
        section: &NewSection,
        meetings: &[Meeting],
        shards: u32,
    ) -> Result<Uuid, AdminError> {
        let mut tx = self.pool.begin().await?;
        let components = catalog::course_components(&mut *tx, &section.course_code)
            .await?
            .ok_or_else(|| AdminError::UnknownCourse(section.course_code.clone()))?;
        check_component(&section.course_code, &components, section.component())?;
        let restrictions = check_restrictions(&section.restrictions)?;
        let id = catalog::create_section(&mut tx, section, meetings, &restrictions, shards).await?;
        let this = LinkEnd {
            id,
            term_id: section.term_id,
            course_code: section.course_code.clone(),
            component: section.component(),
        };
        let pairs = checked_links(&mut tx, &this, &components, &section.links).await?;
        catalog::replace_links(&mut tx, id, &pairs).await?;
        for partner in &section.links {
            cluster_rows::notify_rules(&mut *tx, Notice::Section(*partner)).await?;
        }
        tx.commit().await?;
        // The partners' cached facts lack the new links (the rules read either side, but a
        // catalog answer should not wait for a restart).
        self.cache.forget_facts(&section.links);
        Ok(id)
    }

    /// Replace the links of `section` (on either side) with links to `links`, checked as
    /// [`Self::create_section`] checks them. The section's and its old and new partners'
    /// cached rule facts are forgotten on this node; returns those sections (the section
    /// first), whose cached catalog answers are stale too.
    /// Every node is told (a [`Notice::Section`] per section, sent with the commit).
    pub async fn set_links(&self, section: Uuid, links: &[Uuid]) -> Result<Vec<Uuid>, AdminError> {
        let links = check_link_ids(Some(section), links)?;
        let mut tx = self.pool.begin().await?;
        let this = catalog::link_ends(&mut *tx, &[section])
            .await?
            .pop()
            .ok_or(AdminError::SectionNotFound)?;
        let components = catalog::course_components(&mut *tx, &this.course_code)
            .await?
            .unwrap_or_default();
        let pairs = checked_links(&mut tx, &this, &components, &links).await?;
        let old = catalog::links_of(&mut *tx, section).await?;
        catalog::replace_links(&mut tx, section, &pairs).await?;
        let mut touched = vec![section];
        touched.extend(old);
        touched.extend(links);
        for s in &touched {
            cluster_rows::notify_rules(&mut *tx, Notice::Section(*s)).await?;
        }
        tx.commit().await?;
        self.cache.forget_facts(&touched);
        Ok(touched)
    }
}

impl RegistrationService {
    /// Change the credit range or grading bases of course `code` (what `patch` leaves out
    /// stays); the course as it is now. Refused while a student's active place would fall
    /// outside them (its recorded options, or the course's defaults for a place with none
    /// recorded, which a change of the default basis would silently change): students keep
    /// what they chose. The sections' cached facts are forgotten on every node (a
    /// [`Notice::Section`] each, sent with the commit); returns them too, whose cached
    /// catalog answers are stale.
    pub async fn set_course_grading(
        &self,
        code: &str,
        patch: &CourseGradingPatch,
    ) -> Result<(Course, Vec<Uuid>), AdminError> {
        let mut tx = self.pool.begin().await?;
        let old = catalog::course_for_update(&mut tx, code)
            .await?
            .ok_or(AdminError::CourseNotFound)?;
        let new = patch.applied_to(&old)?;
        let (outside, implicit) = catalog::places_outside(&mut tx, &new, &old).await?;
        if outside > 0 {
            return Err(AdminError::OptionsInUse(format!(
                "{outside} active places of {code} were chosen outside the new credit range or \
                 grading bases; students keep what they chose (they may change it, or drop)"
            )));
        }
        if implicit > 0 {
            return Err(AdminError::OptionsInUse(format!(
                "{implicit} active places of {code} take the course's default grading basis \
                 without having chosen it; the change would change their basis"
            )));
        }
        let sections = catalog::update_course_grading(&mut tx, &new).await?;
        for s in &sections {
            cluster_rows::notify_rules(&mut *tx, Notice::Section(*s)).await?;
        }
        tx.commit().await?;
        self.cache.forget_facts(&sections);
        Ok((new, sections))
    }
}

/// The `(primary_id, linked_id)` rows linking `this` to `links`, every one of which must
/// exist and pass [`link_pairs`].
async fn checked_links(
    tx: &mut sqlx::PgConnection,
    this: &LinkEnd,
    components: &[registrar_actors::student_rules::Component],
    links: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, AdminError> {
    if links.is_empty() {
        return Ok(vec![]);
    }
    let others = catalog::link_ends(&mut *tx, links).await?;
    if let Some(missing) = links.iter().find(|id| !others.iter().any(|o| o.id == **id)) {
        return Err(AdminError::UnknownSection(*missing));
    }
    Ok(link_pairs(this, components, &others)?)
}
