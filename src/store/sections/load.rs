//! Loading a section for activation: its counters, its active enrollments and held seats
//! (with the reserved pools their seats count against, and the waitlisted students'
//! attributes), its reserved pools, the database clock, its recent
//! accepted decisions (so re-sent requests are replayed) and the epoch this node owns its
//! shard under. A section whose shard this node does not own is
//! [`StoreError::Fenced`]: the actor must not start.

use super::unavailable;
use crate::resources::{Standing, attributes_of};
use chrono::{DateTime, Utc};
use registrar_actors::ledger::{RECENT_REQUESTS, WaitlistEntry, WaitlistMode};
use registrar_actors::{
    Attribute, AttributeKind, Outcome, PoolId, RequestId, ReservePool, SectionId, SectionSnapshot,
    StoreError, StudentId,
};
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
    /// Batches with changes committed (see `CommitBatch::after`).
    commit_seq: i64,
    /// The section's shard.
    shard: i32,
    /// The shard's epoch (none if the shard has no row yet).
    epoch: Option<i64>,
    /// The shard's owner.
    owner: Option<String>,
    /// The database clock now.
    clock: DateTime<Utc>,
    /// `auto` or `offer`.
    waitlist_mode: String,
    /// How long an offer stands.
    offer_window_secs: i32,
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
    /// The reserved pool a seat counts against.
    reserve_id: Option<Uuid>,
    /// When an offered seat stops waiting.
    offer_expires_at: Option<DateTime<Utc>>,
    /// A seat beyond the capacity, by a capacity permit.
    over_capacity: bool,
    /// Why a waiting student is skipped at promotion.
    blocked_reason: Option<String>,
    /// The student's standing, majors, program and cohort (read for waitlisted rows: a
    /// freed reserved seat goes to one who matches).
    standing: Option<String>,
    /// Majors.
    majors: Option<Vec<String>>,
    /// Program.
    program: Option<String>,
    /// Cohort.
    cohort: Option<String>,
}

/// One reserved pool.
#[derive(sqlx::FromRow)]
struct PoolRow {
    id: Uuid,
    attribute: String,
    value: String,
    seats: i32,
    release_at: Option<DateTime<Utc>>,
    released: bool,
}

/// The snapshot of `section` as `node_id` may decide it.
pub(super) async fn snapshot(
    pool: &PgPool,
    node_id: &str,
    section: SectionId,
) -> Result<SectionSnapshot, StoreError> {
    let row: SectionRow = sqlx::query_as(
        "SELECT s.capacity, s.waitlist_capacity, s.next_waitlist_seq, s.commit_seq, s.shard, o.epoch,
                o.node_id AS owner, now() AS clock, s.waitlist_mode, s.offer_window_secs
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
        "SELECT e.student_id, e.request_id, e.status, e.waitlist_seq, e.drop_if_enrolled,
                e.reserve_id, e.offer_expires_at, e.over_capacity, e.blocked_reason, s.standing, s.majors, s.program, s.cohort
           FROM enrollments e
           LEFT JOIN students s ON s.id = e.student_id AND e.status = 'waitlisted'
          WHERE e.section_id = $1 AND e.status <> 'dropped'",
    )
    .bind(section.0)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let mut enrolled = Vec::new();
    let mut held = Vec::new();
    let mut replacing = Vec::new();
    let mut waitlist = Vec::new();
    let mut pooled = Vec::new();
    let mut waiting_attrs = Vec::new();
    let mut offers = Vec::new();
    let mut over_capacity = Vec::new();
    let mut blocked = Vec::new();
    for place in places {
        let (student, request) = (StudentId(place.student_id), RequestId(place.request_id));
        if let Some(pool) = place.reserve_id {
            pooled.push((student, PoolId(pool)));
        }
        match (place.status.as_str(), place.waitlist_seq) {
            ("enrolled", _) => {
                if place.over_capacity {
                    over_capacity.push(student);
                }
                enrolled.push((student, request));
            }
            ("held", _) => held.push((student, request)),
            ("offered", _) if place.offer_expires_at.is_some() => {
                offers.push((
                    student,
                    request,
                    place.offer_expires_at.unwrap_or(row.clock),
                ));
            }
            ("waitlisted", Some(seq)) => {
                let standing = place.standing.as_deref().and_then(Standing::parse);
                let majors = place.majors.unwrap_or_default();
                let attrs = attributes_of(
                    standing,
                    &majors,
                    place.program.as_deref(),
                    place.cohort.as_deref(),
                );
                waiting_attrs.push((student, attrs));
                if let Some(reason) = place.blocked_reason {
                    blocked.push((student, reason));
                }
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
    let reserves = pools(pool, section).await?;
    let mode = match row.waitlist_mode.as_str() {
        "offer" => WaitlistMode::Offer {
            window_secs: row.offer_window_secs.max(0) as u32,
        },
        _ => WaitlistMode::Auto,
    };
    Ok(SectionSnapshot {
        offers,
        mode,
        reserves,
        pooled,
        over_capacity,
        blocked,
        waiting_attrs,
        clock: row.clock,
        capacity: row.capacity as u32,
        waitlist_capacity: row.waitlist_capacity as u32,
        enrolled,
        waitlist,
        held,
        replacing,
        next_waitlist_seq: row.next_waitlist_seq,
        commit_seq: row.commit_seq,
        epoch,
        shard: row.shard as u32,
        decided,
    })
}

/// The reserved pools of `section`, in order.
pub async fn pools(pool: &PgPool, section: SectionId) -> Result<Vec<ReservePool>, StoreError> {
    let rows: Vec<PoolRow> = sqlx::query_as(
        "SELECT id, attribute, value, seats, release_at, released_at IS NOT NULL AS released
           FROM section_reserves WHERE section_id = $1 ORDER BY position",
    )
    .bind(section.0)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.into_iter()
        .map(|r| {
            let kind: AttributeKind = r
                .attribute
                .parse()
                .map_err(|e: String| StoreError::Unavailable(format!("corrupt pool row: {e}")))?;
            Ok(ReservePool {
                id: PoolId(r.id),
                attribute: Attribute::new(kind, r.value),
                seats: r.seats as u32,
                release_at: r.release_at,
                released: r.released,
            })
        })
        .collect()
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

/// Sections of shards `node` owns with a reserved pool whose release time has come and
/// that no commit has released yet, or an offer whose time ran out, with the database
/// clock now (at most `limit`).
pub async fn due_sections(
    pool: &PgPool,
    node: &str,
    limit: i64,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
    sqlx::query_as(
        "SELECT d.section_id, now()
           FROM (SELECT r.section_id FROM section_reserves r
                  WHERE r.released_at IS NULL AND r.release_at <= now()
                 UNION
                 SELECT e.section_id FROM enrollments e
                  WHERE e.status = 'offered' AND e.offer_expires_at <= now()) d
           JOIN sections s ON s.id = d.section_id
           JOIN shard_owners o ON o.shard = s.shard
          WHERE o.node_id = $1
          LIMIT $2",
    )
    .bind(node)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(unavailable)
}
