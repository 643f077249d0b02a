//! Checks 7-9: the per-student registration rules, cluster-wide. The rules run on the
//! student's home node against a cached schedule; after a fault (a failover, a fenced
//! node, a clock-skewed node, a half-finished swap) a stale cache could let a request
//! pass that the rules would refuse. These checks judge the final database alone: a
//! student's active places (enrolled or waitlisted) of one term, as
//! `registrar_actors::student_rules` counts them.

/// (check name, query returning one text line per violation).
pub(super) const CHECKS: &[(&str, &str)] = &[
    (
        "one section per course",
        "SELECT format('student %s holds active places in %s sections of course %s in term %s: %s',
                       e.student_id, count(*), s.course_code, s.term_id,
                       string_agg(s.id::text, ', ' ORDER BY s.id))
           FROM enrollments e JOIN sections s ON s.id = e.section_id
          WHERE e.status <> 'dropped'
          GROUP BY e.student_id, s.term_id, s.course_code HAVING count(*) > 1",
    ),
    (
        "credit limit",
        "SELECT format('student %s: %s credits enrolled or waitlisted in term %s, max_credits %s',
                       st.id, sum(c.credits), s.term_id, st.max_credits)
           FROM enrollments e
           JOIN sections s ON s.id = e.section_id
           JOIN courses c ON c.code = s.course_code
           JOIN students st ON st.id = e.student_id
          WHERE e.status <> 'dropped'
          GROUP BY st.id, st.max_credits, s.term_id
         HAVING sum(c.credits) > st.max_credits",
    ),
    (
        "no time conflict",
        // Meetings are `{"day":"mon","start":"09:00","end":"10:15"}`, end exclusive: two
        // meetings clash on the same day when each starts before the other ends.
        "WITH active AS (
             SELECT e.student_id, s.term_id, s.id AS section_id, s.meetings
               FROM enrollments e JOIN sections s ON s.id = e.section_id
              WHERE e.status <> 'dropped' AND jsonb_array_length(s.meetings) > 0)
         SELECT format('student %s: sections %s and %s meet at the same time (%s %s-%s and %s-%s)',
                       a.student_id, a.section_id, b.section_id, ma->>'day',
                       ma->>'start', ma->>'end', mb->>'start', mb->>'end')
           FROM active a
           JOIN active b ON b.student_id = a.student_id AND b.term_id = a.term_id
                        AND b.section_id > a.section_id
           CROSS JOIN LATERAL jsonb_array_elements(a.meetings) ma
           CROSS JOIN LATERAL jsonb_array_elements(b.meetings) mb
          WHERE ma->>'day' = mb->>'day'
            AND (ma->>'start')::time < (mb->>'end')::time
            AND (mb->>'start')::time < (ma->>'end')::time",
    ),
];
