//! The SQL of a group commit: one transaction for several sections' batches, one
//! statement per table for the whole group (`unnest` arrays carrying each row's section,
//! epoch and timestamp).
//!
//! Fencing: the transaction first takes `FOR SHARE` on the `shard_owners` rows of the
//! group's shards (and of the student shards its commands' home claims name) and checks
//! each batch's epoch, so a handoff (which updates that row)
//! waits for in-flight commits and every later commit of the old owner fails. The section
//! row of a batch that changes something also records the writing epoch and refuses an
//! older one; a batch of refusals alone writes no section row.
//!
//! A batch decided on top of another still committing ([`CommitBatch::after`]) is written
//! once that one has settled (the committer waits for its [`registrar_actors::Turn`]), and
//! placed only if the section's commit count is the one it was decided on. The section
//! rows are written last, just before COMMIT. A batch left out (fenced, or decided on a
//! batch that did not commit) rolls the transaction back, and the others are written again
//! without it.

use super::unavailable;
use crate::event_schema::{Event, EventKind};
use crate::store::audit::AttemptOutcome;
use chrono::{DateTime, Utc};
use registrar_actors::ledger::ChangeKind;
use registrar_actors::{CommitBatch, HomeClaim, Outcome, PoolId, SectionId, StoreError, StudentId};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Write `batches` (distinct sections) in one transaction. Per batch: `Ok` if committed,
/// `Err(Fenced)` if its epoch is stale, `Err(Unavailable)` if its home claim is stale or it
/// was decided on a batch that did not commit (left out, nothing written for it). The
/// whole group fails with `Unavailable` if a statement failed or COMMIT was refused
/// (nothing recorded), and with `Unknown` if COMMIT got no answer (it may have been
/// recorded).
pub(super) async fn write_group(
    pool: &PgPool,
    node_id: &str,
    batches: &[&CommitBatch],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut candidates = batches.to_vec();
    let mut left_out: HashMap<SectionId, StoreError> = HashMap::new();
    let (tx, live) = loop {
        let written = write_uncommitted(pool, node_id, &candidates)
            .await
            .map_err(unavailable)?;
        left_out.extend(written.left_out);
        if written.missed.is_empty() {
            break (written.tx, written.live);
        }
        // A batch could not be placed: roll back, and write the others again without it.
        if let Some(tx) = written.tx {
            tx.rollback().await.map_err(unavailable)?;
        }
        candidates.retain(|b| !left_out.contains_key(&b.section));
        if candidates.is_empty() {
            break (None, HashSet::new());
        }
    };
    if let Some(tx) = tx {
        tx.commit().await.map_err(|e| {
            if crate::store::commit_outcome_unknown(&e) {
                tracing::warn!(error = %e, "COMMIT failed; its outcome is unknown");
                StoreError::Unknown("the database failed at COMMIT".into())
            } else {
                unavailable(e)
            }
        })?;
    }
    Ok(batches
        .iter()
        .map(|b| {
            if live.contains(&b.section) {
                Ok(())
            } else {
                Err(left_out.remove(&b.section).unwrap_or(StoreError::Fenced))
            }
        })
        .collect())
}

/// What [`write_uncommitted`] left to commit.
struct Written<'c> {
    /// The open transaction, if anything was written.
    tx: Option<Transaction<'c, Postgres>>,
    /// Sections written in it.
    live: HashSet<SectionId>,
    /// Sections left out, and why.
    left_out: HashMap<SectionId, StoreError>,
    /// Sections whose rows were written but whose section row could not be placed: the
    /// transaction must not commit.
    missed: HashSet<SectionId>,
}

/// Every statement of [`write_group`] but the COMMIT.
///
/// The transaction takes `FOR SHARE` on the `shard_owners` rows of the batches' section
/// shards and of the student shards their commands' home claims name, in shard order: a
/// batch whose section epoch is stale is fenced; a batch holding a command whose home node
/// no longer owns the student's shard at the claimed epoch is left out whole (the actor
/// reloads, its other commands are sent again), so a home that lost a student cannot
/// commit a decision its successor's rules never saw. A handoff or failover of either
/// shard waits for the commits that checked it.
async fn write_uncommitted<'c>(
    pool: &'c PgPool,
    node_id: &str,
    batches: &[&CommitBatch],
) -> Result<Written<'c>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut shards: Vec<i32> = batches.iter().map(|b| b.shard as i32).collect();
    let claims: HashSet<&HomeClaim> = batches
        .iter()
        .flat_map(|b| b.attempts.iter().filter_map(|a| a.home.as_ref()))
        .collect();
    shards.extend(claims.iter().map(|c| c.shard as i32));
    shards.sort_unstable();
    shards.dedup();
    let owners: HashMap<i32, (i64, Option<String>)> = sqlx::query_as(
        "SELECT shard, epoch, node_id FROM shard_owners WHERE shard = ANY($1)
          ORDER BY shard FOR SHARE",
    )
    .bind(&shards)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(shard, epoch, node): (i32, i64, Option<String>)| (shard, (epoch, node)))
    .collect();
    // The fault suite pauses a node while this transaction holds its shard rows.
    if crate::faults::hit("commit-hold", &node_id) {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
    let holds = |shard: u32, epoch: i64, node: &str| {
        owners
            .get(&(shard as i32))
            .is_some_and(|(e, n)| *e == epoch && n.as_deref() == Some(node))
    };
    let stale: HashSet<&HomeClaim> = claims
        .into_iter()
        .filter(|c| !holds(c.shard, c.epoch, &c.node))
        .collect();
    let mut left_out = HashMap::new();
    let mut live: Vec<&CommitBatch> = Vec::with_capacity(batches.len());
    for b in batches.iter().copied() {
        if !holds(b.shard, b.epoch, node_id) {
            left_out.insert(b.section, StoreError::Fenced);
            continue;
        }
        if b.attempts
            .iter()
            .any(|a| a.home.as_ref().is_some_and(|h| stale.contains(h)))
        {
            tracing::warn!(section_id = %b.section, "a command's home node lost its student; batch left out");
            left_out.insert(
                b.section,
                StoreError::Unavailable("a command's home node no longer holds its student".into()),
            );
            continue;
        }
        live.push(b);
    }
    if live.is_empty() {
        return Ok(Written {
            tx: None,
            live: HashSet::new(),
            left_out,
            missed: HashSet::new(),
        });
    }
    write_enrollments(&mut tx, &live).await?;
    write_reserves(&mut tx, &live).await?;
    write_permit_uses(&mut tx, &live).await?;
    write_attempts_and_outbox(&mut tx, &live).await?;
    let placed = place_sections(&mut tx, &live).await?;
    let missed: Vec<&CommitBatch> = live
        .iter()
        .filter(|b| !placed.contains(&b.section.0))
        .copied()
        .collect();
    if !missed.is_empty() {
        left_out.extend(why_missed(&mut tx, &missed).await?);
    }
    Ok(Written {
        tx: Some(tx),
        live: live.iter().map(|b| b.section).collect(),
        left_out,
        missed: missed.iter().map(|b| b.section).collect(),
    })
}

/// Place each batch's section row, last: the counters of a batch that changes something
/// (which also moves the section's commit count on), and, for a batch of refusals alone
/// decided on top of batches still committing, a check that the count it was decided on is
/// the committed one. Returns the sections placed.
///
/// Only batches that change something write their section's row: one of refusals alone
/// (most batches of a full section under a flash) leaves the counters as they are, and
/// writing them would cost a row version and the deferred check that recounts the
/// section's enrollments. Such a batch is fenced by the shard's epoch, like every other.
async fn place_sections(
    tx: &mut Transaction<'_, Postgres>,
    live: &[&CommitBatch],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let (changing, refusals): (Vec<&CommitBatch>, Vec<&CommitBatch>) =
        live.iter().partition(|b| !b.changes.is_empty());
    let mut placed = HashSet::with_capacity(live.len());
    if !changing.is_empty() {
        placed.extend(write_counters(tx, &changing).await?);
    }
    let (checked, free): (Vec<&CommitBatch>, Vec<&CommitBatch>) =
        refusals.into_iter().partition(|b| b.after.is_some());
    placed.extend(free.iter().map(|b| b.section.0));
    if !checked.is_empty() {
        let ids: Vec<Uuid> = checked.iter().map(|b| b.section.0).collect();
        let afters: Vec<Option<i64>> = checked.iter().map(|b| b.after).collect();
        // FOR SHARE waits for a writer still holding the row, then reads it as left (the
        // count compared after the wait, as above).
        let found: Vec<(Uuid, bool)> = sqlx::query_as(
            "SELECT s.id, s.commit_seq = t.after FROM sections s
               JOIN unnest($1::uuid[], $2::int8[]) AS t(id, after) ON s.id = t.id
             FOR SHARE OF s",
        )
        .bind(&ids)
        .bind(&afters)
        .fetch_all(&mut **tx)
        .await?;
        placed.extend(found.into_iter().filter_map(|(id, ok)| ok.then_some(id)));
    }
    Ok(placed)
}

/// Why each of `missed` could not be placed: a newer epoch wrote its section (fenced), or
/// it was decided on a batch that did not commit.
async fn why_missed(
    tx: &mut Transaction<'_, Postgres>,
    missed: &[&CommitBatch],
) -> Result<HashMap<SectionId, StoreError>, sqlx::Error> {
    let ids: Vec<Uuid> = missed.iter().map(|b| b.section.0).collect();
    let epochs: HashMap<Uuid, i64> =
        sqlx::query_as("SELECT id, owner_epoch FROM sections WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    Ok(missed
        .iter()
        .map(|b| {
            let why = if epochs.get(&b.section.0).is_none_or(|e| *e > b.epoch) {
                StoreError::Fenced
            } else {
                tracing::warn!(section_id = %b.section, "batch decided on one that did not commit; left out");
                StoreError::Unavailable("an earlier batch of the section did not commit".into())
            };
            (b.section, why)
        })
        .collect())
}

/// Set each section's counters and move its commit count on, unless the row was written
/// under a newer epoch; returns the sections placed: updated, on top of the count their
/// batch was decided on.
async fn write_counters(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[&CommitBatch],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    // In id order, so that two transactions lock shared section rows in the same order.
    let mut batches = batches.to_vec();
    batches.sort_unstable_by_key(|b| b.section.0);
    let n = batches.len();
    let mut afters = Vec::with_capacity(n);
    let (mut ids, mut seats, mut waitlists, mut capacities) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut next_seqs, mut epochs, mut ats) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for b in &batches {
        afters.push(b.after);
        ids.push(b.section.0);
        seats.push(b.counts.seats_taken as i32);
        waitlists.push(b.counts.waitlist_length as i32);
        capacities.push(b.counts.capacity as i32);
        next_seqs.push(
            b.changes
                .iter()
                .filter_map(|c| match c.kind {
                    ChangeKind::Waitlisted { seq, .. } => Some(seq + 1),
                    _ => None,
                })
                .max(),
        );
        epochs.push(b.epoch);
        ats.push(b.decided_at);
    }
    // The count is checked on the row as updated, not in WHERE: a row that does not match
    // WHERE as last committed would be skipped without waiting for a writer still holding
    // it. A mismatched row is rolled back with the whole transaction.
    let updated: Vec<(Uuid, bool)> = sqlx::query_as(
        "UPDATE sections s SET seats_taken = t.seats, waitlist_length = t.waitlist,
                capacity = t.capacity,
                next_waitlist_seq = GREATEST(s.next_waitlist_seq, COALESCE(t.next_seq, 0)),
                owner_epoch = t.epoch, updated_at = t.at, commit_seq = s.commit_seq + 1
           FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::int4[], $5::int8[], $6::int8[],
                       $7::timestamptz[], $8::int8[])
                AS t(id, seats, waitlist, capacity, next_seq, epoch, at, after)
          WHERE s.id = t.id AND s.owner_epoch <= t.epoch
         RETURNING s.id, t.after IS NULL OR s.commit_seq - 1 = t.after",
    )
    .bind(&ids)
    .bind(&seats)
    .bind(&waitlists)
    .bind(&capacities)
    .bind(&next_seqs)
    .bind(&epochs)
    .bind(&ats)
    .bind(&afters)
    .fetch_all(&mut **tx)
    .await?;
    Ok(updated
        .into_iter()
        .filter_map(|(id, placed)| placed.then_some(id))
        .collect())
}

/// Column arrays for one segment of enrollment changes, in which each (section, student)
/// appears at most once.
#[derive(Default)]
struct Segment {
    new_sections: Vec<Uuid>,
    new_students: Vec<Uuid>,
    new_status: Vec<&'static str>,
    new_seq: Vec<Option<i64>>,
    new_position: Vec<Option<i32>>,
    new_request: Vec<Uuid>,
    new_decision: Vec<Option<Uuid>>,
    new_drop_if: Vec<Option<Uuid>>,
    new_pool: Vec<Option<Uuid>>,
    /// Seats beyond the capacity, by a capacity permit.
    new_over: Vec<bool>,
    new_epoch: Vec<i64>,
    new_at: Vec<DateTime<Utc>>,
    dropped: Keys,
    /// Per dropped key: a withdrawal (the row keeps a W, `withdrawn_at`).
    withdrawn: Vec<bool>,
    promoted: Keys,
    confirmed: Keys,
    /// Waitlisted rows whose seat is now held for a decision ("drop if enrolled").
    promoted_held: Keys,
    promoted_held_decisions: Vec<Uuid>,
    /// Waitlisted rows offered a seat, and when each offer ends.
    offered: Keys,
    offered_until: Vec<DateTime<Utc>>,
    /// Offered rows whose student took the seat.
    offer_accepted: Keys,
    /// Waiting rows skipped at promotion (a reason) or no longer (none).
    blocked: Keys,
    blocked_reasons: Vec<Option<String>>,
    /// Offered rows whose offer ended without a seat, and how (`declined`, `expired`).
    offer_ended: Keys,
    offer_ended_how: Vec<&'static str>,
    /// Decisions recorded confirmed with their held seat: (decision, section, student,
    /// section left, when).
    replaces: Vec<(Uuid, Uuid, Uuid, Uuid, DateTime<Utc>)>,
    touched: HashSet<(SectionId, StudentId)>,
}

/// (section, student, when) columns of an UPDATE.
#[derive(Default)]
struct Keys {
    sections: Vec<Uuid>,
    students: Vec<Uuid>,
    ats: Vec<DateTime<Utc>>,
    /// The reserved pool a seat taken counts against (promotions).
    pools: Vec<Option<Uuid>>,
}

impl Keys {
    fn push(&mut self, section: SectionId, student: StudentId, at: DateTime<Utc>) {
        self.push_seat(section, student, at, None);
    }

    fn push_seat(
        &mut self,
        section: SectionId,
        student: StudentId,
        at: DateTime<Utc>,
        pool: Option<PoolId>,
    ) {
        self.sections.push(section.0);
        self.students.push(student.0);
        self.ats.push(at);
        self.pools.push(pool.map(|p| p.0));
    }
}

/// Write the enrollment changes of every batch. A student may appear twice for one section
/// (enroll, drop, enroll again in one batch): the changes are split into segments in which
/// each (section, student) appears once, written in order.
async fn write_enrollments(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[&CommitBatch],
) -> Result<(), sqlx::Error> {
    let mut segment = Segment::default();
    for batch in batches {
        for change in &batch.changes {
            let Some(student) = change.kind.student() else {
                continue;
            };
            let key = (batch.section, student);
            if segment.touched.contains(&key) {
                write_segment(tx, std::mem::take(&mut segment)).await?;
            }
            segment.touched.insert(key);
            let at = batch.decided_at;
            let (status, seq, position) = match change.kind {
                ChangeKind::Enrolled { .. } => ("enrolled", None, None),
                ChangeKind::Held {
                    decision, leave, ..
                } => {
                    if let Some(leave) = leave {
                        let replace = (decision.0, batch.section.0, student.0, leave.0, at);
                        segment.replaces.push(replace);
                    }
                    ("held", None, None)
                }
                ChangeKind::PromotedHeld {
                    decision, leave, ..
                } => {
                    (segment.promoted_held).push_seat(batch.section, student, at, change.pool);
                    segment.promoted_held_decisions.push(decision.0);
                    let replace = (decision.0, batch.section.0, student.0, leave.0, at);
                    segment.replaces.push(replace);
                    continue;
                }
                ChangeKind::Waitlisted { seq, position, .. } => {
                    ("waitlisted", Some(seq), Some(position as i32))
                }
                ChangeKind::Dropped { withdrawn, .. } => {
                    segment.dropped.push(batch.section, student, at);
                    segment.withdrawn.push(withdrawn);
                    continue;
                }
                ChangeKind::Released { .. } => {
                    segment.dropped.push(batch.section, student, at);
                    segment.withdrawn.push(false);
                    continue;
                }
                ChangeKind::Confirmed { .. } => {
                    segment.confirmed.push(batch.section, student, at);
                    continue;
                }
                ChangeKind::Promoted { .. } => {
                    (segment.promoted).push_seat(batch.section, student, at, change.pool);
                    continue;
                }
                ChangeKind::CapacityChanged { .. } | ChangeKind::ReservesChanged { .. } => {
                    continue;
                }
                ChangeKind::Offered { expires_at, .. } => {
                    (segment.offered).push_seat(batch.section, student, at, change.pool);
                    segment.offered_until.push(expires_at);
                    continue;
                }
                ChangeKind::OfferAccepted { .. } => {
                    segment.offer_accepted.push(batch.section, student, at);
                    continue;
                }
                ChangeKind::Blocked { ref reason, .. } => {
                    segment.blocked.push(batch.section, student, at);
                    segment.blocked_reasons.push(reason.clone());
                    continue;
                }
                ChangeKind::OfferEnded { expired, .. } => {
                    segment.offer_ended.push(batch.section, student, at);
                    (segment.offer_ended_how).push(if expired { "expired" } else { "declined" });
                    continue;
                }
            };
            segment.new_sections.push(batch.section.0);
            segment.new_students.push(student.0);
            segment.new_status.push(status);
            segment.new_seq.push(seq);
            segment.new_position.push(position);
            segment.new_request.push(change.request.0);
            segment
                .new_decision
                .push(change.kind.decision().map(|d| d.0));
            segment.new_drop_if.push(match change.kind {
                ChangeKind::Waitlisted { replacing, .. } => replacing.map(|s| s.0),
                _ => None,
            });
            segment.new_pool.push(change.pool.map(|p| p.0));
            segment.new_over.push(change.over_capacity);
            segment.new_epoch.push(batch.epoch);
            segment.new_at.push(at);
        }
    }
    if !segment.touched.is_empty() {
        write_segment(tx, segment).await?;
    }
    Ok(())
}

async fn write_segment(
    tx: &mut Transaction<'_, Postgres>,
    seg: Segment,
) -> Result<(), sqlx::Error> {
    if !seg.dropped.sections.is_empty() {
        sqlx::query(
            "UPDATE enrollments e SET status = 'dropped', dropped_at = t.at,
                    withdrawn_at = CASE WHEN t.withdrawn THEN t.at END
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bool[])
                    AS t(section, student, at, withdrawn)
              WHERE e.section_id = t.section AND e.student_id = t.student AND e.status <> 'dropped'",
        )
        .bind(&seg.dropped.sections)
        .bind(&seg.dropped.students)
        .bind(&seg.dropped.ats)
        .bind(&seg.withdrawn)
        .execute(&mut **tx)
        .await?;
    }
    if !seg.blocked.sections.is_empty() {
        sqlx::query(
            "UPDATE enrollments e SET blocked_reason = t.reason,
                    blocked_at = COALESCE(e.blocked_at, CASE WHEN t.reason IS NOT NULL THEN t.at END)
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[])
                    AS t(section, student, at, reason)
              WHERE e.section_id = t.section AND e.student_id = t.student AND e.status = 'waitlisted'",
        )
        .bind(&seg.blocked.sections)
        .bind(&seg.blocked.students)
        .bind(&seg.blocked.ats)
        .bind(&seg.blocked_reasons)
        .execute(&mut **tx)
        .await?;
    }
    seat(tx, &seg.promoted, "waitlisted").await?;
    if !seg.promoted_held.sections.is_empty() {
        sqlx::query(
            "UPDATE enrollments e SET status = 'held', decision_id = t.decision, reserve_id = t.pool
               FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[])
                    AS t(section, student, decision, pool)
              WHERE e.section_id = t.section AND e.student_id = t.student AND e.status = 'waitlisted'",
        )
        .bind(&seg.promoted_held.sections)
        .bind(&seg.promoted_held.students)
        .bind(&seg.promoted_held_decisions)
        .bind(&seg.promoted_held.pools)
        .execute(&mut **tx)
        .await?;
    }
    seat(tx, &seg.confirmed, "held").await?;
    write_offers(tx, &seg).await?;
    if !seg.new_students.is_empty() {
        sqlx::query(
            "INSERT INTO enrollments (section_id, student_id, status, waitlist_seq, joined_position,
                                      request_id, epoch, created_at, enrolled_at, decision_id,
                                      drop_if_enrolled, reserve_id, over_capacity)
             SELECT sec, s, st, q, p, r, ep, at, CASE WHEN st = 'enrolled' THEN at END, d, di, rv, oc
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::int4[], $6::uuid[],
                           $7::int8[], $8::timestamptz[], $9::uuid[], $10::uuid[], $11::uuid[],
                           $12::bool[])
                    AS t(sec, s, st, q, p, r, ep, at, d, di, rv, oc)",
        )
        .bind(&seg.new_sections)
        .bind(&seg.new_students)
        .bind(&seg.new_status)
        .bind(&seg.new_seq)
        .bind(&seg.new_position)
        .bind(&seg.new_request)
        .bind(&seg.new_epoch)
        .bind(&seg.new_at)
        .bind(&seg.new_decision)
        .bind(&seg.new_drop_if)
        .bind(&seg.new_pool)
        .bind(&seg.new_over)
        .execute(&mut **tx)
        .await?;
    }
    if !seg.replaces.is_empty() {
        write_replaces(tx, seg.replaces).await?;
    }
    Ok(())
}

/// Offers made (a waitlisted row becomes `offered` until its time), taken (`enrolled`), and
/// ended (`dropped`, saying how).
async fn write_offers(
    tx: &mut Transaction<'_, Postgres>,
    seg: &Segment,
) -> Result<(), sqlx::Error> {
    if !seg.offered.sections.is_empty() {
        sqlx::query(
            "UPDATE enrollments e SET status = 'offered', offered_at = t.at,
                    offer_expires_at = t.until, reserve_id = t.pool
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::uuid[])
                    AS t(section, student, at, until, pool)
              WHERE e.section_id = t.section AND e.student_id = t.student AND e.status = 'waitlisted'",
        )
        .bind(&seg.offered.sections)
        .bind(&seg.offered.students)
        .bind(&seg.offered.ats)
        .bind(&seg.offered_until)
        .bind(&seg.offered.pools)
        .execute(&mut **tx)
        .await?;
    }
    seat(tx, &seg.offer_accepted, "offered").await?;
    if !seg.offer_ended.sections.is_empty() {
        sqlx::query(
            "UPDATE enrollments e SET status = 'dropped', dropped_at = t.at, offer_ended = t.how
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[])
                    AS t(section, student, at, how)
              WHERE e.section_id = t.section AND e.student_id = t.student AND e.status = 'offered'",
        )
        .bind(&seg.offer_ended.sections)
        .bind(&seg.offer_ended.students)
        .bind(&seg.offer_ended.ats)
        .bind(&seg.offer_ended_how)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Give the rows of `keys` their seat: `from` (a waitlist place promoted, a held seat
/// confirmed) becomes `enrolled`, at each key's time.
async fn seat(
    tx: &mut Transaction<'_, Postgres>,
    keys: &Keys,
    from: &'static str,
) -> Result<(), sqlx::Error> {
    if keys.sections.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE enrollments e SET status = 'enrolled', enrolled_at = t.at,
                reserve_id = COALESCE(t.pool, e.reserve_id)
           FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::uuid[])
                AS t(section, student, at, pool)
          WHERE e.section_id = t.section AND e.student_id = t.student AND e.status = $5",
    )
    .bind(&keys.sections)
    .bind(&keys.students)
    .bind(&keys.ats)
    .bind(&keys.pools)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Record, confirmed, the decision of each seat held for "drop if enrolled" (nothing else
/// had to be tried); its request is the one that asked for it, read from the held row.
async fn write_replaces(
    tx: &mut Transaction<'_, Postgres>,
    replaces: Vec<(Uuid, Uuid, Uuid, Uuid, DateTime<Utc>)>,
) -> Result<(), sqlx::Error> {
    let n = replaces.len();
    let (mut ids, mut sections, mut students, mut leaves, mut ats) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (d, sec, st, leave, at) in replaces {
        ids.push(d);
        sections.push(sec);
        students.push(st);
        leaves.push(leave);
        ats.push(at);
    }
    sqlx::query(
        "INSERT INTO decisions (id, request_id, student_id, state, take, leave, deadline,
                                created_at, decided_at)
         SELECT t.d, e.request_id, t.st, 'confirmed', ARRAY[t.sec], ARRAY[t.leave], t.at,
                t.at, t.at
           FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[])
                AS t(d, sec, st, leave, at)
           JOIN enrollments e ON e.section_id = t.sec AND e.student_id = t.st AND e.status = 'held'
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&sections)
    .bind(&students)
    .bind(&leaves)
    .bind(&ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replace the reserved pools of each section whose pools changed (rare: an admin's edit,
/// a pool's release time), as the last change of its batch left them.
async fn write_reserves(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[&CommitBatch],
) -> Result<(), sqlx::Error> {
    for batch in batches {
        let Some(pools) = batch.changes.iter().rev().find_map(|c| match &c.kind {
            ChangeKind::ReservesChanged { pools } => Some(pools),
            _ => None,
        }) else {
            continue;
        };
        let ids: Vec<Uuid> = pools.iter().map(|p| p.id.0).collect();
        let kinds: Vec<&str> = pools.iter().map(|p| p.attribute.kind.as_str()).collect();
        let values: Vec<&str> = pools.iter().map(|p| p.attribute.value.as_str()).collect();
        let seats: Vec<i32> = pools.iter().map(|p| p.seats as i32).collect();
        let release: Vec<Option<DateTime<Utc>>> = pools.iter().map(|p| p.release_at).collect();
        let released: Vec<bool> = pools.iter().map(|p| p.released).collect();
        sqlx::query("DELETE FROM section_reserves WHERE section_id = $1")
            .bind(batch.section.0)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO section_reserves (id, section_id, position, attribute, value, seats,
                                           release_at, released_at)
             SELECT t.id, $1, (t.n - 1)::int2, t.kind, t.value, t.seats, t.release,
                    CASE WHEN t.released THEN $2::timestamptz END
               FROM unnest($3::uuid[], $4::text[], $5::text[], $6::int4[], $7::timestamptz[],
                           $8::bool[]) WITH ORDINALITY
                    AS t(id, kind, value, seats, release, released, n)",
        )
        .bind(batch.section.0)
        .bind(batch.decided_at)
        .bind(&ids)
        .bind(&kinds)
        .bind(&values)
        .bind(&seats)
        .bind(&release)
        .bind(&released)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The permits each change used (a row each, with the place it allowed), and the uses
/// given back by released holds. A use recorded already (a retried batch, or a single-use
/// permit used twice, which the student's home never sends) is left as it is: the seat
/// stands either way, and a failed group commit would fail every section in it.
async fn write_permit_uses(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[&CommitBatch],
) -> Result<(), sqlx::Error> {
    let (mut permits, mut sections, mut students, mut requests, mut decisions, mut ats) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut freed_sections, mut freed_students, mut freed_decisions) = (vec![], vec![], vec![]);
    for batch in batches {
        for change in &batch.changes {
            let Some(student) = change.kind.student() else {
                continue;
            };
            if let ChangeKind::Released { decision, .. } = change.kind {
                freed_sections.push(batch.section.0);
                freed_students.push(student.0);
                freed_decisions.push(decision.0);
            }
            for permit in &change.permits {
                permits.push(permit.0);
                sections.push(batch.section.0);
                students.push(student.0);
                requests.push(change.request.0);
                decisions.push(change.kind.decision().map(|d| d.0));
                ats.push(batch.decided_at);
            }
        }
    }
    if !freed_sections.is_empty() {
        sqlx::query(
            "DELETE FROM permit_uses u
              USING unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS t(section, student, decision)
              WHERE u.section_id = t.section AND u.student_id = t.student
                AND u.decision_id = t.decision",
        )
        .bind(&freed_sections)
        .bind(&freed_students)
        .bind(&freed_decisions)
        .execute(&mut **tx)
        .await?;
    }
    if permits.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO permit_uses (permit_id, single_use, section_id, student_id, request_id,
                                  decision_id, used_at)
         SELECT t.permit, p.single_use, t.section, t.student, t.request, t.decision, t.at
           FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                       $6::timestamptz[]) AS t(permit, section, student, request, decision, at)
           JOIN permits p ON p.id = t.permit
         ON CONFLICT DO NOTHING",
    )
    .bind(&permits)
    .bind(&sections)
    .bind(&students)
    .bind(&requests)
    .bind(&decisions)
    .bind(&ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The audit rows of every decided command and one outbox row per change, in ONE
/// statement (one round trip: on a busy node each round trip waits to be scheduled on both
/// ends, and a hot section's next batch waits for this one).
async fn write_attempts_and_outbox(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[&CommitBatch],
) -> Result<(), sqlx::Error> {
    let n: usize = batches.iter().map(|b| b.attempts.len()).sum();
    let mut requests = Vec::with_capacity(n);
    let mut students = Vec::with_capacity(n);
    let mut sections = Vec::with_capacity(n);
    let mut actions = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    let mut promoted = Vec::with_capacity(n);
    let mut decided = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    for batch in batches {
        for a in &batch.attempts {
            requests.push(a.request.0);
            students.push(a.student.map(|s| s.0));
            sections.push(batch.section.0);
            actions.push(a.action);
            let (outcome, code, position) = match &a.outcome {
                Ok(Outcome::Enrolled) => (AttemptOutcome::Enrolled, None, None),
                Ok(Outcome::Waitlisted { position }) => {
                    (AttemptOutcome::Waitlisted, None, Some(*position as i32))
                }
                Ok(Outcome::Dropped { .. }) => (AttemptOutcome::Dropped, None, None),
                Ok(Outcome::Held) => (AttemptOutcome::Held, None, None),
                Ok(Outcome::Confirmed) => (AttemptOutcome::Confirmed, None, None),
                Ok(Outcome::Released { .. }) => (AttemptOutcome::Released, None, None),
                Ok(Outcome::CapacityChanged { .. }) => {
                    (AttemptOutcome::CapacityChanged, None, None)
                }
                Ok(Outcome::ReservesChanged { .. }) => {
                    (AttemptOutcome::ReservesChanged, None, None)
                }
                Ok(Outcome::OffersExpired { .. }) => (AttemptOutcome::OffersExpired, None, None),
                Ok(Outcome::BlockChanged { .. }) => (AttemptOutcome::BlockChanged, None, None),
                Err(refusal) => (AttemptOutcome::Refused, Some(refusal.code()), None),
            };
            outcomes.push(outcome.as_str());
            codes.push(code);
            positions.push(position);
            promoted.push(match &a.outcome {
                Ok(Outcome::Dropped { promoted, .. } | Outcome::Released { promoted, .. }) => {
                    Some(promoted.is_some())
                }
                _ => None,
            });
            decided.push(a.outcome.as_ref().ok().map(sqlx::types::Json));
            ats.push(batch.decided_at);
        }
    }
    let m: usize = batches.iter().map(|b| b.changes.len()).sum();
    let mut event_ids = Vec::with_capacity(m);
    let mut keys = Vec::with_capacity(m);
    let mut payloads = Vec::with_capacity(m);
    let mut event_ats = Vec::with_capacity(m);
    for batch in batches {
        for change in &batch.changes {
            let event_id = Event::id_of(batch, change);
            event_ids.push(event_id);
            keys.push(EventKind::of(&change.kind).routing_key());
            payloads.push(sqlx::types::Json(Event::of(batch, change, event_id)));
            event_ats.push(batch.decided_at);
        }
    }
    if requests.is_empty() && event_ids.is_empty() {
        return Ok(());
    }
    // A batch written again after its COMMIT succeeded but the reply was lost derives the
    // same event ids: its events are already there, and skipping them keeps one copy
    // each (the rest of such a retry either is a no-op or fails on the enrollments'
    // unique index, and the actor then reloads what was committed).
    sqlx::query(
        "WITH audit AS (
            INSERT INTO registration_attempts (request_id, student_id, section_id, action, outcome, code, position, created_at, promoted, decided)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                                 $7::int4[], $8::timestamptz[], $9::bool[], $10::jsonb[])
         )
         INSERT INTO outbox (event_id, routing_key, payload, created_at)
         SELECT * FROM unnest($11::uuid[], $12::text[], $13::jsonb[], $14::timestamptz[])
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&requests)
    .bind(&students)
    .bind(&sections)
    .bind(&actions)
    .bind(&outcomes)
    .bind(&codes)
    .bind(&positions)
    .bind(&ats)
    .bind(&promoted)
    .bind(&decided)
    .bind(&event_ids)
    .bind(&keys)
    .bind(&payloads)
    .bind(&event_ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
