//! The write-through of section actors: [`PgSectionStore`] loads a section's seats and
//! waitlist and commits a decided batch in ONE transaction: enrollment rows, the section's
//! counters (fenced by the shard epoch), the audit trail and one outbox row per change.
//!
//! Fencing: the commit first takes `FOR SHARE` on this node's `shard_owners` row and checks
//! the epoch, so a handoff (which updates that row) waits for in-flight commits and every
//! later commit of the old owner fails. The section row also records the writing epoch and
//! refuses an older one.

use chrono::{DateTime, Utc};
use registrar_actors::ledger::{ChangeKind, Placement, WaitlistEntry};
use registrar_actors::{
    CommitBatch, Outcome, RequestId, SectionId, SectionSnapshot, SectionStore, StoreError,
    StudentId,
};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashSet;
use uuid::Uuid;

/// PostgreSQL-backed [`SectionStore`] for one node.
pub struct PgSectionStore {
    pool: PgPool,
    node_id: String,
}

impl PgSectionStore {
    /// A store writing as `node_id`.
    pub fn new(pool: PgPool, node_id: String) -> Self {
        Self { pool, node_id }
    }
}

fn unavailable(err: sqlx::Error) -> StoreError {
    tracing::warn!(error = %err, "section store error");
    StoreError::Unavailable("database error".into())
}

#[async_trait::async_trait]
impl SectionStore for PgSectionStore {
    async fn load(&self, section: SectionId) -> Result<SectionSnapshot, StoreError> {
        let row: Option<(i32, i32, i64, i32, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT s.capacity, s.waitlist_capacity, s.next_waitlist_seq, s.shard, o.epoch, o.node_id
               FROM sections s LEFT JOIN shard_owners o ON o.shard = s.shard
              WHERE s.id = $1",
        )
        .bind(section.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let (capacity, waitlist_capacity, next_seq, shard, epoch, owner) =
            row.ok_or(StoreError::NotFound)?;
        let epoch = match (epoch, owner) {
            (Some(epoch), Some(owner)) if owner == self.node_id => epoch,
            _ => return Err(StoreError::Fenced),
        };
        let rows: Vec<(Uuid, Uuid, String, Option<i64>)> = sqlx::query_as(
            "SELECT student_id, request_id, status, waitlist_seq FROM enrollments
              WHERE section_id = $1 AND status <> 'dropped'",
        )
        .bind(section.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut enrolled = Vec::new();
        let mut waitlist = Vec::new();
        for (student, request, status, seq) in rows {
            if status == "enrolled" {
                enrolled.push((StudentId(student), RequestId(request)));
            } else {
                waitlist.push(WaitlistEntry {
                    seq: seq.unwrap_or_default(),
                    student: StudentId(student),
                    request: RequestId(request),
                });
            }
        }
        Ok(SectionSnapshot {
            capacity: capacity as u32,
            waitlist_capacity: waitlist_capacity as u32,
            enrolled,
            waitlist,
            next_waitlist_seq: next_seq,
            epoch,
            shard: shard as u32,
        })
    }

    async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        match write_batch(&mut tx, &self.node_id, batch).await {
            Ok(()) => {}
            Err(WriteError::Fenced) => return Err(StoreError::Fenced),
            Err(WriteError::Sql(e)) => return Err(unavailable(e)),
        }
        tx.commit().await.map_err(unavailable)
    }
}

enum WriteError {
    Fenced,
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Sql(e)
    }
}

/// Column arrays for one segment of changes (each student at most once per segment).
#[derive(Default)]
struct Segment {
    new_students: Vec<Uuid>,
    new_status: Vec<&'static str>,
    new_seq: Vec<Option<i64>>,
    new_position: Vec<Option<i32>>,
    new_request: Vec<Uuid>,
    dropped: Vec<Uuid>,
    promoted: Vec<Uuid>,
    touched: HashSet<StudentId>,
}

impl Segment {
    fn is_empty(&self) -> bool {
        self.touched.is_empty()
    }
}

async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    node_id: &str,
    batch: &CommitBatch,
) -> Result<(), WriteError> {
    let epoch: Option<i64> = sqlx::query_scalar(
        "SELECT epoch FROM shard_owners WHERE shard = $1 AND node_id = $2 FOR SHARE",
    )
    .bind(batch.shard as i32)
    .bind(node_id)
    .fetch_optional(&mut **tx)
    .await?;
    if epoch != Some(batch.epoch) {
        return Err(WriteError::Fenced);
    }

    // A student may appear twice in one batch (enroll, drop, enroll again): split the
    // changes into segments in which each student appears once, and write them in order.
    let mut segment = Segment::default();
    for change in &batch.changes {
        if let Some(student) = change.kind.student()
            && segment.touched.contains(&student)
        {
            write_segment(tx, batch, std::mem::take(&mut segment)).await?;
        }
        match change.kind {
            ChangeKind::Enrolled { student } => {
                segment.new_students.push(student.0);
                segment.new_status.push("enrolled");
                segment.new_seq.push(None);
                segment.new_position.push(None);
                segment.new_request.push(change.request.0);
                segment.touched.insert(student);
            }
            ChangeKind::Waitlisted {
                student,
                seq,
                position,
            } => {
                segment.new_students.push(student.0);
                segment.new_status.push("waitlisted");
                segment.new_seq.push(Some(seq));
                segment.new_position.push(Some(position as i32));
                segment.new_request.push(change.request.0);
                segment.touched.insert(student);
            }
            ChangeKind::Dropped { student, .. } => {
                segment.dropped.push(student.0);
                segment.touched.insert(student);
            }
            ChangeKind::Promoted { student } => {
                segment.promoted.push(student.0);
                segment.touched.insert(student);
            }
            ChangeKind::CapacityChanged { .. } => {}
        }
    }
    if !segment.is_empty() {
        write_segment(tx, batch, segment).await?;
    }

    let next_seq = batch
        .changes
        .iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Waitlisted { seq, .. } => Some(seq + 1),
            _ => None,
        })
        .max();
    let updated = sqlx::query(
        "UPDATE sections SET seats_taken = $2, waitlist_length = $3, capacity = $4,
                next_waitlist_seq = GREATEST(next_waitlist_seq, COALESCE($5, 0)),
                owner_epoch = $6, updated_at = $7
          WHERE id = $1 AND owner_epoch <= $6",
    )
    .bind(batch.section.0)
    .bind(batch.counts.seats_taken as i32)
    .bind(batch.counts.waitlist_length as i32)
    .bind(batch.counts.capacity as i32)
    .bind(next_seq)
    .bind(batch.epoch)
    .bind(batch.decided_at)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(WriteError::Fenced);
    }

    write_attempts(tx, batch).await?;
    write_outbox(tx, batch).await?;
    Ok(())
}

async fn write_segment(
    tx: &mut Transaction<'_, Postgres>,
    batch: &CommitBatch,
    seg: Segment,
) -> Result<(), sqlx::Error> {
    let at: DateTime<Utc> = batch.decided_at;
    if !seg.dropped.is_empty() {
        sqlx::query(
            "UPDATE enrollments SET status = 'dropped', dropped_at = $3
              WHERE section_id = $1 AND student_id = ANY($2) AND status <> 'dropped'",
        )
        .bind(batch.section.0)
        .bind(&seg.dropped)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    if !seg.promoted.is_empty() {
        sqlx::query(
            "UPDATE enrollments SET status = 'enrolled', enrolled_at = $3
              WHERE section_id = $1 AND student_id = ANY($2) AND status = 'waitlisted'",
        )
        .bind(batch.section.0)
        .bind(&seg.promoted)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    if !seg.new_students.is_empty() {
        sqlx::query(
            "INSERT INTO enrollments (section_id, student_id, status, waitlist_seq, joined_position,
                                      request_id, epoch, created_at, enrolled_at)
             SELECT $1, s, st, q, p, r, $7, $8, CASE WHEN st = 'enrolled' THEN $8 END
               FROM unnest($2::uuid[], $3::text[], $4::int8[], $5::int4[], $6::uuid[]) AS t(s, st, q, p, r)",
        )
        .bind(batch.section.0)
        .bind(&seg.new_students)
        .bind(&seg.new_status)
        .bind(&seg.new_seq)
        .bind(&seg.new_position)
        .bind(&seg.new_request)
        .bind(batch.epoch)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn write_attempts(
    tx: &mut Transaction<'_, Postgres>,
    batch: &CommitBatch,
) -> Result<(), sqlx::Error> {
    let n = batch.attempts.len();
    let mut requests = Vec::with_capacity(n);
    let mut students = Vec::with_capacity(n);
    let mut actions = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    for a in &batch.attempts {
        requests.push(a.request.0);
        students.push(a.student.map(|s| s.0));
        actions.push(a.action);
        let (outcome, code, position) = match &a.outcome {
            Ok(Outcome::Enrolled) => ("enrolled", None, None),
            Ok(Outcome::Waitlisted { position }) => ("waitlisted", None, Some(*position as i32)),
            Ok(Outcome::Dropped { .. }) => ("dropped", None, None),
            Ok(Outcome::CapacityChanged { .. }) => ("capacity_changed", None, None),
            Err(refusal) => ("refused", Some(refusal.code()), None),
        };
        outcomes.push(outcome);
        codes.push(code);
        positions.push(position);
    }
    sqlx::query(
        "INSERT INTO registration_attempts (request_id, student_id, section_id, action, outcome, code, position, created_at)
         SELECT r, s, $1, a, o, c, p, $8
           FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::int4[]) AS t(r, s, a, o, c, p)",
    )
    .bind(batch.section.0)
    .bind(&requests)
    .bind(&students)
    .bind(&actions)
    .bind(&outcomes)
    .bind(&codes)
    .bind(&positions)
    .bind(batch.decided_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_outbox(
    tx: &mut Transaction<'_, Postgres>,
    batch: &CommitBatch,
) -> Result<(), sqlx::Error> {
    if batch.changes.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(batch.changes.len());
    let mut keys = Vec::with_capacity(batch.changes.len());
    let mut payloads = Vec::with_capacity(batch.changes.len());
    for change in &batch.changes {
        let event_id = Uuid::new_v4();
        let kind = change.kind.event_type();
        let mut payload = json!({
            "event_id": event_id,
            "type": kind,
            "occurred_at": batch.decided_at,
            "section_id": batch.section,
            "student_id": change.kind.student(),
            "request_id": change.request,
            "seats_taken": change.counts.seats_taken,
            "capacity": change.counts.capacity,
            "waitlist_length": change.counts.waitlist_length,
            "shard": batch.shard,
            "epoch": batch.epoch,
        });
        match change.kind {
            ChangeKind::Waitlisted { position, .. } => {
                payload["position"] = json!(position);
            }
            ChangeKind::Dropped { from, .. } => {
                payload["from"] = json!(match from {
                    Placement::Enrolled => "enrolled",
                    Placement::Waitlisted => "waitlisted",
                });
            }
            ChangeKind::CapacityChanged { from, to } => {
                payload["previous_capacity"] = json!(from);
                payload["capacity"] = json!(to);
            }
            _ => {}
        }
        ids.push(event_id);
        keys.push(kind);
        payloads.push(payload);
    }
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, payload, created_at)
         SELECT e, k, p, $4 FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS t(e, k, p)",
    )
    .bind(&ids)
    .bind(&keys)
    .bind(&payloads)
    .bind(batch.decided_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
