//! Permits (`permits`) and their uses (`permit_uses`): granted and revoked by staff,
//! read by the student rules, used by the section commits (`sections::write`).

use super::DbResult;
use crate::resources::{NewPermit, PermitFilter, PermitView};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::{Permit, PermitKind};
use registrar_actors::{PermitId, SectionId};
use uuid::Uuid;

/// The columns of a [`PermitView`], over `permits p` (the last use, and the state at the
/// database's time).
const VIEW: &str = "p.id, p.student_id, p.term_id, p.section_id, p.kind, p.max_credits,
    p.jump_waitlist, p.single_use, p.expires_at, p.note, p.granted_by, p.granted_at,
    p.revoked_at, p.revoked_by, u.used_at, u.section_id AS used_for,
    CASE WHEN p.revoked_at IS NOT NULL THEN 'revoked'
         WHEN p.single_use AND u.used_at IS NOT NULL THEN 'used'
         WHEN p.expires_at <= now() THEN 'expired'
         ELSE 'active' END AS state";

/// The last use of `p`.
const LAST_USE: &str = "LEFT JOIN LATERAL (SELECT used_at, section_id FROM permit_uses
    WHERE permit_id = p.id ORDER BY used_at DESC LIMIT 1) u ON true";

/// Record a permit granted by `by`, for `term` (the section's term, or the overload's).
pub async fn insert<'e>(
    db: impl sqlx::PgExecutor<'e>,
    new: &NewPermit,
    term: Uuid,
    by: Uuid,
) -> DbResult<PermitView> {
    let sql = format!(
        "WITH p AS (
           INSERT INTO permits (id, student_id, term_id, section_id, kind, max_credits,
                                jump_waitlist, single_use, expires_at, note, granted_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *)
         SELECT {VIEW} FROM p LEFT JOIN LATERAL (SELECT NULL::timestamptz AS used_at,
                NULL::uuid AS section_id) u ON true"
    );
    Ok(sqlx::query_as(&sql)
        .bind(Uuid::new_v4())
        .bind(new.student_id)
        .bind(term)
        .bind(new.section_id)
        .bind(&new.kind)
        .bind(new.max_credits.map(|m| m as i16))
        .bind(new.jump_waitlist)
        // A credit overload holds for its term: it is never used up.
        .bind(new.single_use && new.kind != PermitKind::CreditOverload.as_str())
        .bind(new.expires_at)
        .bind(new.note.as_deref())
        .bind(by)
        .fetch_one(db)
        .await?)
}

/// Revoke permit `id` (by `by`); the permit as it is now, none if there is no such permit.
/// A permit revoked already keeps its first revocation.
pub async fn revoke<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    by: Uuid,
) -> DbResult<Option<PermitView>> {
    let sql = format!(
        "WITH p AS (
           UPDATE permits SET revoked_at = COALESCE(revoked_at, now()),
                              revoked_by = COALESCE(revoked_by, $2)
            WHERE id = $1 RETURNING *)
         SELECT {VIEW} FROM p {LAST_USE}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(by)
        .fetch_optional(db)
        .await?)
}

/// Permits matching `filter`, newest first (at most 1000).
pub async fn list<'e>(
    db: impl sqlx::PgExecutor<'e>,
    filter: &PermitFilter,
) -> DbResult<Vec<PermitView>> {
    let sql = format!(
        "SELECT {VIEW} FROM permits p {LAST_USE}
          WHERE ($1::uuid IS NULL OR p.student_id = $1)
            AND ($2::uuid IS NULL OR p.section_id = $2)
          ORDER BY p.granted_at DESC, p.id LIMIT 1000"
    );
    Ok(sqlx::query_as(&sql)
        .bind(filter.student_id)
        .bind(filter.section_id)
        .fetch_all(db)
        .await?)
}

/// The student of permit `id`, if there is one.
pub async fn student_of<'e>(db: impl sqlx::PgExecutor<'e>, id: Uuid) -> DbResult<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT student_id FROM permits WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// One permit as the student rules see it, with its term and end.
#[derive(Clone, Debug)]
pub struct RulePermit {
    /// The term it counts in.
    pub term: Uuid,
    /// When it stops counting.
    pub expires_at: Option<DateTime<Utc>>,
    /// The permit.
    pub permit: Permit,
}

/// A permit as [`RULE_PERMITS`] returns it (one element of its JSON array).
#[derive(serde::Deserialize)]
pub(super) struct RulePermitRow {
    id: Uuid,
    term_id: Uuid,
    section_id: Option<Uuid>,
    kind: String,
    max_credits: Option<i16>,
    jump_waitlist: bool,
    expires_at: Option<DateTime<Utc>>,
    spent_on: Option<Uuid>,
}

/// The permits of student `s.id` the rules may use, as a JSON array of [`RulePermitRow`]s:
/// not revoked, and single-use ones either unused or used for a place the student still
/// holds (which they cover again, never another). Expiry is left to the caller (judged
/// when the rules run). An expression of the rule inputs' query
/// ([`super::students::rule_inputs_many`]), so a student's permits come in the same round
/// trip as the rest of its inputs.
pub(super) const RULE_PERMITS: &str = "COALESCE((
    SELECT json_agg(json_build_object(
               'id', p.id, 'term_id', p.term_id, 'section_id', p.section_id, 'kind', p.kind,
               'max_credits', p.max_credits, 'jump_waitlist', p.jump_waitlist,
               'expires_at', p.expires_at, 'spent_on', u.section_id))
      FROM permits p
      LEFT JOIN permit_uses u ON u.permit_id = p.id AND u.single_use
     WHERE p.student_id = s.id AND p.revoked_at IS NULL
       AND (u.permit_id IS NULL
            OR EXISTS (SELECT 1 FROM enrollments e
                        WHERE e.student_id = p.student_id AND e.section_id = u.section_id
                          AND e.status <> 'dropped'))), '[]')";

/// The permits of [`RULE_PERMITS`]'s rows, as the student rules see them.
pub(super) fn rule_permits(rows: Vec<RulePermitRow>) -> Vec<RulePermit> {
    rows.into_iter()
        // The CHECK constraint admits only known kinds.
        .filter_map(|row| {
            let kind = PermitKind::parse(&row.kind)?;
            Some(RulePermit {
                term: row.term_id,
                expires_at: row.expires_at,
                permit: Permit {
                    id: PermitId(row.id),
                    kind,
                    section: row.section_id.map(SectionId),
                    max_credits: row.max_credits.map(|m| m as u32),
                    jump_waitlist: row.jump_waitlist,
                    spent_on: row.spent_on.map(SectionId),
                },
            })
        })
        .collect()
}
