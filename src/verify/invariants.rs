//! Checks 1-5 and 15: the invariants a registrar database must hold whatever happened to it.
//! Each check is one query that returns a line per violation, formatted by PostgreSQL, so
//! a check is its SQL and nothing else.

use super::Result;
use crate::event_schema::EventKind;
use sqlx::PgPool;

/// (check name, query returning one text line per violation).
const CHECKS: &[(&str, &str)] = &[
    (
        "no oversell",
        "SELECT format('section %s: capacity %s, seats_taken %s, enrolled rows %s',
                       s.id, s.capacity, s.seats_taken, seated)
           FROM sections s,
                LATERAL (SELECT count(*) AS seated FROM enrollments e
                          WHERE e.section_id = s.id AND e.status IN ('enrolled', 'held', 'offered')) x
          WHERE s.seats_taken > s.capacity OR seated > s.capacity",
    ),
    (
        "counters match rows",
        "SELECT format('section %s: capacity %s, seats_taken %s vs %s enrolled or held rows, '
                       'waitlist_length %s vs %s waitlisted rows (waitlist capacity %s)',
                       id, capacity, seats_taken, seated, waitlist_length, waiting,
                       waitlist_capacity)
           FROM (SELECT s.id, s.capacity, s.seats_taken, s.waitlist_length, s.waitlist_capacity,
                        count(e.id) FILTER (WHERE e.status IN ('enrolled', 'held', 'offered')) AS seated,
                        count(e.id) FILTER (WHERE e.status = 'waitlisted') AS waiting,
                        -- Students skipped at promotion wait beside free seats, in line.
                        count(e.id) FILTER (WHERE e.status = 'waitlisted'
                                              AND e.blocked_reason IS NULL) AS in_line,
                        -- Free seats the section's unreleased pools hold back.
                        COALESCE((SELECT sum(GREATEST(r.seats - (SELECT count(*) FROM enrollments p
                                     WHERE p.section_id = s.id AND p.reserve_id = r.id
                                       AND p.status IN ('enrolled', 'held', 'offered')), 0))
                                    FROM section_reserves r
                                   WHERE r.section_id = s.id AND r.released_at IS NULL), 0)
                          AS held_back
                   FROM sections s
                   LEFT JOIN enrollments e ON e.section_id = s.id AND e.status <> 'dropped'
                  GROUP BY s.id) c
          WHERE seats_taken <> seated OR waitlist_length <> waiting
             OR waitlist_length > waitlist_capacity
             OR (in_line > 0 AND seated + held_back < capacity)",
    ),
    (
        "one active place",
        "SELECT format('student %s holds %s active places in section %s',
                       student_id, count(*), section_id)
           FROM enrollments WHERE status <> 'dropped'
          GROUP BY section_id, student_id HAVING count(*) > 1",
    ),
    (
        "waitlist order",
        "SELECT format('section %s: waitlist_seq %s used %s times', section_id, waitlist_seq, count(*))
           FROM enrollments WHERE waitlist_seq IS NOT NULL
          GROUP BY section_id, waitlist_seq HAVING count(*) > 1
         UNION ALL
         SELECT format('section %s: waitlist_seq %s issued but next_waitlist_seq is %s '
                       '(a restart could reuse it)', e.section_id, max(e.waitlist_seq),
                       s.next_waitlist_seq)
           FROM enrollments e JOIN sections s ON s.id = e.section_id
          WHERE e.waitlist_seq IS NOT NULL
          GROUP BY e.section_id, s.next_waitlist_seq
         HAVING max(e.waitlist_seq) >= s.next_waitlist_seq
         UNION ALL
         SELECT format('section %s: entry %s was promoted while older entry %s still waits '
                       '(not FIFO)', section_id, newest_promoted, oldest_waiting)
           FROM (SELECT section_id,
                        -- A reserved seat may go past older entries who do not match its pool.
                        max(waitlist_seq) FILTER (WHERE enrolled_at IS NOT NULL
                                                    AND reserve_id IS NULL) AS newest_promoted,
                        -- An entry skipped at promotion (blocked_at) may be passed.
                        min(waitlist_seq) FILTER (WHERE status = 'waitlisted'
                                                    AND blocked_at IS NULL) AS oldest_waiting
                   FROM enrollments WHERE waitlist_seq IS NOT NULL
                  GROUP BY section_id) w
          WHERE newest_promoted > oldest_waiting",
    ),
    (
        "reserved pools",
        "SELECT format('section %s: pool %s (%s %s) seats %s students in %s seats',
                       r.section_id, r.id, r.attribute, r.value, taken, r.seats)
           FROM section_reserves r,
                LATERAL (SELECT count(*) AS taken FROM enrollments e
                          WHERE e.section_id = r.section_id AND e.reserve_id = r.id
                            AND e.status IN ('enrolled', 'held', 'offered')) x
          WHERE taken > r.seats
         UNION ALL
         SELECT format('section %s: student %s sits in pool %s (%s %s) without its attribute',
                       e.section_id, e.student_id, r.id, r.attribute, r.value)
           FROM enrollments e
           JOIN section_reserves r ON r.id = e.reserve_id
           JOIN students st ON st.id = e.student_id
          WHERE e.status IN ('enrolled', 'held', 'offered')
            AND NOT CASE r.attribute
                    WHEN 'major' THEN r.value = ANY(st.majors)
                    WHEN 'program' THEN st.program IS NOT DISTINCT FROM r.value
                    WHEN 'cohort' THEN st.cohort IS NOT DISTINCT FROM r.value
                    ELSE upper(st.standing) IS NOT DISTINCT FROM r.value END
         UNION ALL
         SELECT format('section %s: student %s waits while pool %s (%s %s) they match has a free seat',
                       e.section_id, e.student_id, r.id, r.attribute, r.value)
           FROM enrollments e
           JOIN sections s ON s.id = e.section_id
           JOIN section_reserves r ON r.section_id = e.section_id AND r.released_at IS NULL
           JOIN students st ON st.id = e.student_id
          WHERE e.status = 'waitlisted' AND e.blocked_reason IS NULL
            AND s.seats_taken < s.capacity
            AND CASE r.attribute
                    WHEN 'major' THEN r.value = ANY(st.majors)
                    WHEN 'program' THEN st.program IS NOT DISTINCT FROM r.value
                    WHEN 'cohort' THEN st.cohort IS NOT DISTINCT FROM r.value
                    ELSE upper(st.standing) IS NOT DISTINCT FROM r.value END
            AND r.seats > (SELECT count(*) FROM enrollments p
                            WHERE p.section_id = r.section_id AND p.reserve_id = r.id
                              AND p.status IN ('enrolled', 'held', 'offered'))",
    ),
    (
        "permits",
        "SELECT format('section %s: student %s sits beyond the capacity without a capacity permit used for it',
                       e.section_id, e.student_id)
           FROM enrollments e
          WHERE e.status = 'enrolled' AND e.over_capacity
            AND NOT EXISTS (SELECT 1 FROM permit_uses u JOIN permits p ON p.id = u.permit_id
                             WHERE u.section_id = e.section_id AND u.student_id = e.student_id
                               AND p.kind = 'capacity')
         UNION ALL
         SELECT format('permit %s (%s, student %s) used by student %s in section %s',
                       p.id, p.kind, p.student_id, u.student_id, u.section_id)
           FROM permit_uses u JOIN permits p ON p.id = u.permit_id
          WHERE u.student_id <> p.student_id
             OR (p.section_id IS NOT NULL AND u.section_id <> p.section_id)
         UNION ALL
         SELECT format('single-use permit %s used %s times', permit_id, count(*))
           FROM permit_uses WHERE single_use GROUP BY permit_id HAVING count(*) > 1",
    ),
    (
        "outbox: event ids",
        "SELECT format('%s outbox rows whose payload event_id differs from the row''s event_id',
                       count(*))
           FROM outbox WHERE payload->>'event_id' IS DISTINCT FROM event_id::text
         HAVING count(*) > 0",
    ),
    (
        "enrollment options fit their course",
        "SELECT format('student %s in section %s: %s credits %s, but %s allows %s to %s credits %s',
                       o.student_id, o.section_id, o.credits, o.grading_basis, c.code,
                       c.min_credits, c.max_credits, array_to_string(c.grading_bases, ', '))
           FROM enrollment_options o
           JOIN enrollments e ON e.student_id = o.student_id AND e.section_id = o.section_id
                             AND e.status <> 'dropped'
           JOIN sections s ON s.id = o.section_id
           JOIN courses c ON c.code = s.course_code
          WHERE o.credits NOT BETWEEN c.min_credits AND c.max_credits
             OR NOT (o.grading_basis = ANY (c.grading_bases))",
    ),
];

/// Check 5: one event per committed change, per section and kind. Rows created with a
/// seat (no seq, no decision) are `enrollment.created`, rows with a seq `waitlist.added`,
/// rows with a seq that got a seat `waitlist.promoted`, dropped rows `enrollment.dropped`,
/// or `enrollment.withdrawn` for those left with a W (`withdrawn_at`).
/// A row of a decision over several sections was `seat.held` first (after
/// `waitlist.added` for a promotion with "drop if enrolled"), then either confirmed
/// (`enrollment.created`, it has an `enrolled_at`) or released (`seat.released`: dropped
/// without ever being enrolled). A row offered a seat (offer-mode waitlists) was
/// `waitlist.offered`, then `waitlist.promoted` if accepted, or `waitlist.offer_declined`
/// / `waitlist.offer_expired` (instead of `enrollment.dropped`) if not.
const ONE_EVENT_PER_CHANGE: &str = "
    WITH expected AS (
        SELECT section_id, kind, count(*) AS n FROM (
            SELECT section_id, $1 AS kind FROM enrollments
             WHERE waitlist_seq IS NULL AND decision_id IS NULL
            UNION ALL
            SELECT section_id, $2 FROM enrollments WHERE waitlist_seq IS NOT NULL
            UNION ALL
            SELECT section_id, $3 FROM enrollments
             WHERE waitlist_seq IS NOT NULL AND enrolled_at IS NOT NULL AND decision_id IS NULL
            UNION ALL
            SELECT section_id, $4 FROM enrollments
             WHERE status = 'dropped' AND (decision_id IS NULL OR enrolled_at IS NOT NULL)
               AND offer_ended IS NULL AND withdrawn_at IS NULL
            UNION ALL
            SELECT section_id, $9 FROM enrollments WHERE offered_at IS NOT NULL
            UNION ALL
            SELECT section_id, CASE offer_ended WHEN 'declined' THEN $10 ELSE $11 END
              FROM enrollments WHERE offer_ended IS NOT NULL
            UNION ALL
            SELECT section_id, $12 FROM enrollments
             WHERE status = 'dropped' AND withdrawn_at IS NOT NULL
            UNION ALL
            SELECT section_id, $6 FROM enrollments WHERE decision_id IS NOT NULL
            UNION ALL
            SELECT section_id, $1 FROM enrollments
             WHERE decision_id IS NOT NULL AND enrolled_at IS NOT NULL
            UNION ALL
            SELECT section_id, $7 FROM enrollments
             WHERE decision_id IS NOT NULL AND enrolled_at IS NULL AND status = 'dropped'
        ) x GROUP BY 1, 2),
    actual AS (
        SELECT (payload->>'section_id')::uuid AS section_id, routing_key AS kind, count(*) AS n
          FROM outbox WHERE routing_key NOT IN ($5, $8, $13, $14, $15)
         GROUP BY 1, 2)
    SELECT format('section %s: %s changes of kind %s in enrollments but %s outbox events',
                  coalesce(e.section_id, a.section_id), coalesce(e.n, 0),
                  coalesce(e.kind, a.kind), coalesce(a.n, 0))
      FROM expected e FULL JOIN actual a ON a.section_id = e.section_id AND a.kind = e.kind
     WHERE coalesce(e.n, 0) <> coalesce(a.n, 0)
     ORDER BY coalesce(e.section_id, a.section_id), coalesce(e.kind, a.kind)";

/// Run every invariant check: (check name, violations), in a fixed order.
pub(super) async fn check(pool: &PgPool) -> Result<Vec<(&'static str, Vec<String>)>> {
    let mut results = Vec::with_capacity(CHECKS.len() + 1);
    for (name, sql) in CHECKS {
        let found = sqlx::query_scalar(sql).fetch_all(pool).await?;
        results.push((*name, found));
    }
    let found = sqlx::query_scalar(ONE_EVENT_PER_CHANGE)
        .bind(EventKind::EnrollmentCreated.routing_key())
        .bind(EventKind::WaitlistAdded.routing_key())
        .bind(EventKind::WaitlistPromoted.routing_key())
        .bind(EventKind::EnrollmentDropped.routing_key())
        .bind(EventKind::CapacityChanged.routing_key())
        .bind(EventKind::SeatHeld.routing_key())
        .bind(EventKind::SeatReleased.routing_key())
        .bind(EventKind::ReservesChanged.routing_key())
        .bind(EventKind::WaitlistOffered.routing_key())
        .bind(EventKind::OfferDeclined.routing_key())
        .bind(EventKind::OfferExpired.routing_key())
        .bind(EventKind::EnrollmentWithdrawn.routing_key())
        // A place may be skipped and let back in line any number of times: the rows keep
        // only the last state, so these events are not counted against them.
        .bind(EventKind::WaitlistBlocked.routing_key())
        .bind(EventKind::WaitlistUnblocked.routing_key())
        // A change of options is no change of a place: the home node writes its event.
        .bind(EventKind::OptionsChanged.routing_key())
        .fetch_all(pool)
        .await?;
    results.push(("outbox: one event per change", found));
    Ok(results)
}

/// One line counting what was checked.
pub(super) async fn summary(pool: &PgPool) -> Result<String> {
    Ok(sqlx::query_scalar(
        "SELECT format('%s sections, %s enrollment rows (%s enrolled, %s waitlisted, %s held, '
                       '%s dropped), %s outbox events',
                       (SELECT count(*) FROM sections), count(*),
                       count(*) FILTER (WHERE status = 'enrolled'),
                       count(*) FILTER (WHERE status = 'waitlisted'),
                       count(*) FILTER (WHERE status = 'held'),
                       count(*) FILTER (WHERE status = 'dropped'),
                       (SELECT count(*) FROM outbox))
           FROM enrollments",
    )
    .fetch_one(pool)
    .await?)
}
