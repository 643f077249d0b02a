//! Loading a section for activation: its counters, its active enrollments and held seats, its recent
//! accepted decisions (so re-sent requests are replayed) and the epoch this node owns its
//! shard under. A section whose shard this node does not own is
//! [`StoreError::Fenced`]: the actor must not start.

use super::unavailable;
use registrar_actors::ledger::{RECENT_REQUESTS, WaitlistEntry};
use registrar_actors::{Outcome, RequestId, SectionId, SectionSnapshot, StoreError, StudentId};
use sqlx::PgPool;
use uuid::Uuid;

/// The section row with its shard's owner.
#[derive(sqlx::FromRow)]
struct SectionRow {
    /// Seats offered.
    capacity: i32,
    /// Waitlist places offered.
    waitlist_capacity: i32,
    /// Next waitlist key to issue.
    next_waitlist_seq: i64,
    /// The section's shard.
    shard: i32,
    /// The shard's epoch (none if the shard has no row yet).
    epoch: Option<i64>,
    /// The shard's owner.
    owner: Option<String>,
}

/// One active enrollment (enrolled or waitlisted).
#[derive(sqlx::FromRow)]
struct PlaceRow {
    /// Who.
    student_id: Uuid,
    /// The request that took the place.
    request_id: Uuid,
    /// `enrolled`, `held` or `waitlisted`.
    status: String,
    /// FIFO key (waitlisted rows always have one: a CHECK says so).
    waitlist_seq: Option<i64>,
    /// The section a waitlisted student leaves when the seat comes.
    drop_if_enrolled: Option<Uuid>,
}

/// The snapshot of `section` as `node_id` may decide it.
pub(super) async fn snapshot(
    pool: &PgPool,
    node_id: &str,
    section: SectionId,
) -> Result<SectionSnapshot, StoreError> {
    let row: SectionRow = sqlx::query_as(
        "SELECT s.capacity, s.waitlist_capacity, s.next_waitlist_seq, s.shard, o.epoch,
                o.node_id AS owner
           FROM sections s LEFT JOIN shard_owners o ON o.shard = s.shard
          WHERE s.id = $1",
    )
    .bind(section.0)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?
    .ok_or(StoreError::NotFound)?;
    let epoch = match (row.epoch, row.owner) {
        (Some(epoch), Some(owner)) if owner == node_id => epoch,
        _ => return Err(StoreError::Fenced),
    };
    let places: Vec<PlaceRow> = sqlx::query_as(
        "SELECT student_id, request_id, status, waitlist_seq, drop_if_enrolled FROM enrollments
          WHERE section_id = $1 AND status <> 'dropped'",
    )
    .bind(section.0)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let mut enrolled = Vec::new();
    let mut held = Vec::new();
    let mut replacing = Vec::new();
    let mut waitlist = Vec::new();
    for place in places {
        let (student, request) = (StudentId(place.student_id), RequestId(place.request_id));
        match (place.status.as_str(), place.waitlist_seq) {
            ("enrolled", _) => enrolled.push((student, request)),
            ("held", _) => held.push((student, request)),
            ("waitlisted", Some(seq)) => {
                waitlist.push(WaitlistEntry {
                    seq,
                    student,
                    request,
                });
                if let Some(leave) = place.drop_if_enrolled {
                    replacing.push((student, SectionId(leave)));
                }
            }
            (status, seq) => {
                // The schema forbids this; deciding on a guess could reorder the waitlist.
                tracing::error!(section_id = %section, student_id = %student, status, ?seq, "corrupt enrollment row");
                return Err(StoreError::Unavailable("corrupt enrollment row".into()));
            }
        }
    }
    let decided = recent_decisions(pool, section).await?;
    Ok(SectionSnapshot {
        capacity: row.capacity as u32,
        waitlist_capacity: row.waitlist_capacity as u32,
        enrolled,
        waitlist,
        held,
        replacing,
        next_waitlist_seq: row.next_waitlist_seq,
        epoch,
        shard: row.shard as u32,
        decided,
    })
}

/// How far back an activation looks for the decisions it must recognise: well past any
/// retry of a request by request id (a hop's retries, a swap being finished), short
/// enough that a section's activation reads a bounded number of rows.
const RECOGNISE_FOR: &str = "1 day";

/// The section's recent accepted decisions, newest first (see
/// [`SectionSnapshot::decided`]). A row whose answer does not parse (written by a newer
/// version) is skipped: such a request is decided again, as before the column existed.
async fn recent_decisions(
    pool: &PgPool,
    section: SectionId,
) -> Result<Vec<(RequestId, Outcome)>, StoreError> {
    let rows: Vec<(Uuid, sqlx::types::Json<serde_json::Value>)> = sqlx::query_as(
        "SELECT request_id, decided FROM registration_attempts
          WHERE section_id = $1 AND decided IS NOT NULL
            AND created_at > now() - $2::interval
          ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(section.0)
    .bind(RECOGNISE_FOR)
    .bind(RECENT_REQUESTS as i64)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    Ok(rows
        .into_iter()
        .filter_map(|(request, decided)| {
            let outcome = serde_json::from_value(decided.0).ok()?;
            Some((RequestId(request), outcome))
        })
        .collect())
}
