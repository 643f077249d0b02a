//! Checks of decisions over several sections (`decisions` and the held seats of
//! `enrollments`), from the final database:
//!
//! - *all or nothing*: a confirmed decision gave none of its seats back (no row of it was
//!   released), a finished confirmed one has every section it took enrolled under it, and
//!   a cancelled one enrolled nobody;
//! - *held seats end with their decision*: no seat is held for a decision that ended (or
//!   has no row), and no decision is still pending, more than a bound
//!   (`REGISTRAR_VERIFY_SWAPS_SETTLED_SECS`, default 30 s, the bound of swaps) after it
//!   ended or its deadline passed: the finishers would have carried it out.

use super::Result;
use sqlx::PgPool;

/// (check name, query returning one line per violation; `$1` is the bound in seconds).
const CHECKS: &[(&str, &str)] = &[
    (
        "decisions: all or nothing",
        "SELECT format('decision %s of student %s confirmed, but its seat in section %s was released',
                       d.id, d.student_id, e.section_id)
           FROM decisions d JOIN enrollments e ON e.decision_id = d.id
          WHERE d.state = 'confirmed' AND e.status = 'dropped' AND e.enrolled_at IS NULL
         UNION ALL
         SELECT format('decision %s of student %s confirmed and finished, but section %s is not enrolled under it',
                       d.id, d.student_id, t.section)
           FROM decisions d CROSS JOIN LATERAL unnest(d.take) AS t(section)
          WHERE d.state = 'confirmed' AND d.finished_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.decision_id = d.id
                               AND e.section_id = t.section AND e.enrolled_at IS NOT NULL)
         UNION ALL
         SELECT format('decision %s of student %s cancelled, but enrolled them in section %s',
                       d.id, d.student_id, e.section_id)
           FROM decisions d JOIN enrollments e ON e.decision_id = d.id
          WHERE d.state = 'cancelled' AND e.enrolled_at IS NOT NULL",
    ),
    (
        "decisions: held seats end with their decision",
        "SELECT format('section %s holds a seat for student %s under decision %s, which %s',
                       e.section_id, e.student_id, e.decision_id,
                       CASE WHEN d.id IS NULL THEN 'has no row' ELSE 'is ' || d.state || ' since ' || d.decided_at END)
           FROM enrollments e LEFT JOIN decisions d ON d.id = e.decision_id
          WHERE e.status = 'held'
            AND (d.id IS NULL OR (d.state <> 'pending'
                                  AND d.decided_at < now() - make_interval(secs => $1)))
         UNION ALL
         SELECT format('decision %s of student %s still pending %s s after its deadline',
                       id, student_id, round(extract(epoch FROM now() - deadline)))
           FROM decisions
          WHERE state = 'pending' AND deadline < now() - make_interval(secs => $1)
         UNION ALL
         SELECT format('decision %s of student %s %s but unfinished %s s later',
                       id, student_id, state, round(extract(epoch FROM now() - decided_at)))
           FROM decisions
          WHERE state <> 'pending' AND finished_at IS NULL
            AND decided_at < now() - make_interval(secs => $1)",
    ),
];

/// Run the checks: (check name, violations).
pub(super) async fn check(pool: &PgPool) -> Result<Vec<(&'static str, Vec<String>)>> {
    let secs = super::swaps::settled_secs();
    let mut results = Vec::with_capacity(CHECKS.len());
    for (name, sql) in CHECKS {
        let found = sqlx::query_scalar(sql)
            .bind(secs as f64)
            .fetch_all(pool)
            .await?;
        results.push((*name, found));
    }
    Ok(results)
}
