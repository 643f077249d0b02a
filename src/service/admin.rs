//! The admin's edits of student rule inputs (holds, registration windows), one function
//! per use case. Each edit and the notice that tells every node's rule cache about it
//! commit in one transaction (PostgreSQL delivers a NOTIFY only at commit), so no node can
//! miss an edit that was made, or hear of one that was not; this node's own cache forgets
//! at once, without waiting for its notice to come back.

use super::registration::RegistrationService;
use crate::resources::{Hold, NewWindow, RegistrationWindow};
use crate::store::cluster::{self as cluster_rows, Notice};
use crate::store::{DbError, catalog, students};
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
    /// No such term.
    #[error("no such term")]
    TermNotFound,
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
    /// Put a hold on `student`.
    pub async fn add_hold(&self, student: Uuid, reason: &str) -> Result<Hold, AdminError> {
        let mut tx = self.pool.begin().await?;
        if students::get(&mut *tx, student).await?.is_none() {
            return Err(AdminError::StudentNotFound);
        }
        let hold = students::add_hold(&mut *tx, student, reason).await?;
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
        Ok(hold)
    }

    /// Lift the hold `hold` of `student`.
    pub async fn remove_hold(&self, student: Uuid, hold: Uuid) -> Result<(), AdminError> {
        let mut tx = self.pool.begin().await?;
        if !students::remove_hold(&mut *tx, student, hold).await? {
            return Err(AdminError::HoldNotFound);
        }
        cluster_rows::notify_rules(&mut *tx, Notice::Student(student)).await?;
        tx.commit().await?;
        self.cache.forget_student(student);
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
}
