//! Permits (overrides) granted and revoked by staff. Each edit commits with its notice to
//! every node's rule cache (as student attributes do), so the student's home sees it at
//! the next request; a permit is used by the commit of the place it allows (see
//! `store::sections::write`), never here.

use super::admin::AdminError;
use super::registration::RegistrationService;
use crate::resources::{NewPermit, PermitFilter, PermitView, invalid};
use crate::store::cluster::{self as cluster_rows, Notice};
use crate::store::{catalog, permits, students};
use uuid::Uuid;

impl RegistrationService {
    /// Grant `new` (checked by the caller) as staff account `by`.
    pub async fn grant_permit(&self, new: &NewPermit, by: Uuid) -> Result<PermitView, AdminError> {
        let mut tx = self.pool.begin().await?;
        let student = students::get(&mut *tx, new.student_id)
            .await?
            .ok_or(AdminError::StudentNotFound)?;
        if student.standing.is_none() {
            return Err(invalid("student_id", "a student account (staff do not register)").into());
        }
        let term = match (new.section_id, new.term_id) {
            (Some(section), _) => catalog::term_of_section(&mut *tx, section)
                .await?
                .ok_or(AdminError::SectionNotFound)?,
            (None, Some(term)) => {
                if !catalog::term_exists(&mut *tx, term).await? {
                    return Err(AdminError::TermNotFound);
                }
                term
            }
            (None, None) => return Err(invalid("section_id", "a section or a term").into()),
        };
        let view = permits::insert(&mut *tx, new, term, by).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(new.student_id)).await?;
        tx.commit().await?;
        self.cache.forget_student(new.student_id);
        Ok(view)
    }

    /// Revoke permit `id` as staff account `by`: it stops counting at once; a place it
    /// already allowed stays.
    pub async fn revoke_permit(&self, id: Uuid, by: Uuid) -> Result<PermitView, AdminError> {
        let mut tx = self.pool.begin().await?;
        let view = permits::revoke(&mut *tx, id, by)
            .await?
            .ok_or(AdminError::PermitNotFound)?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(view.student_id)).await?;
        tx.commit().await?;
        self.cache.forget_student(view.student_id);
        Ok(view)
    }

    /// Permits matching `filter`.
    pub async fn permits(&self, filter: &PermitFilter) -> Result<Vec<PermitView>, AdminError> {
        Ok(permits::list(&self.pool, filter).await?)
    }
}
