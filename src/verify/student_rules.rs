//! Checks 7-9: the per-student registration rules, cluster-wide. The rules run on the
//! student's home node against a cached schedule; after a fault (a failover, a fenced
//! node, a clock-skewed node, a half-finished swap) a stale cache could let a request
//! pass that the rules would refuse. These checks judge the final database alone: a
//! student's active places (enrolled, waitlisted or held) of one term, as
//! `registrar_actors::student_rules` counts them: one section per course, or per
//! component of a course with required components; credits once per course, as the
//! student chose them (none when audited); a linked set never held in part. A rule a
//! permit covers is not broken: a credit overload raises the term's limit; a
//! time-conflict permit used by a place allows its clash.

/// (check name, query returning one text line per violation).
pub(super) const CHECKS: &[(&str, &str)] = &[
    (
        "one section per course",
        "SELECT format('student %s holds active places in %s sections of course %s%s in term %s: %s',
                       student_id, count(*), course_code,
                       CASE WHEN slot <> '' THEN ' (' || slot || ')' ELSE '' END,
                       term_id, string_agg(id::text, ', ' ORDER BY id))
           FROM (SELECT e.student_id, s.term_id, s.course_code, s.id,
                        CASE WHEN cardinality(c.components) > 0 THEN s.component ELSE '' END AS slot
                   FROM enrollments e JOIN sections s ON s.id = e.section_id
                   JOIN courses c ON c.code = s.course_code
                  WHERE e.status <> 'dropped') places
          GROUP BY student_id, term_id, course_code, slot
         HAVING count(*) > 1",
    ),
    (
        "credit limit",
        "SELECT format('student %s: %s credits enrolled or waitlisted in term %s, max_credits %s',
                       student_id, sum(credits), term_id, max_credits)
           FROM (SELECT st.id AS student_id, st.max_credits, s.term_id, c.code,
                        -- What the student counts: the credits chosen (the course's when
                        -- none are recorded), none when audited; the default basis is
                        -- letter where the course allows it, else its first.
                        max(CASE WHEN coalesce(o.grading_basis,
                                               CASE WHEN 'letter' = ANY (c.grading_bases)
                                                    THEN 'letter' ELSE c.grading_bases[1] END)
                                      = 'audit'
                                 THEN 0 ELSE coalesce(o.credits, c.credits) END) AS credits
                   FROM enrollments e
                   JOIN sections s ON s.id = e.section_id
                   JOIN courses c ON c.code = s.course_code
                   JOIN students st ON st.id = e.student_id
                   LEFT JOIN enrollment_options o ON o.student_id = e.student_id
                                                 AND o.section_id = e.section_id
                  -- A place skipped at promotion takes no seat until the rules pass again.
                  WHERE e.status <> 'dropped' AND e.blocked_reason IS NULL
                  GROUP BY st.id, st.max_credits, s.term_id, c.code) per_course
          GROUP BY student_id, max_credits, term_id
         HAVING sum(credits) > max_credits
            -- A credit overload granted for the term (not revoked) raises the limit.
            AND sum(credits) > COALESCE((SELECT max(p.max_credits) FROM permits p
                                          WHERE p.student_id = per_course.student_id
                                            AND p.term_id = per_course.term_id
                                            AND p.kind = 'credit_overload'
                                            AND p.revoked_at IS NULL), 0)",
    ),
    (
        "linked sets whole",
        "WITH placed AS (
             SELECT e.student_id, s.term_id, s.course_code, c.components, s.id, s.component
               FROM enrollments e JOIN sections s ON s.id = e.section_id
               JOIN courses c ON c.code = s.course_code
              WHERE e.status = 'enrolled' AND cardinality(c.components) > 0)
         SELECT format('student %s holds part of a linked set of %s in term %s: %s of %s',
                       student_id, course_code, term_id,
                       string_agg(component, '+' ORDER BY component), array_to_string(components, '+'))
           FROM placed GROUP BY student_id, term_id, course_code, components
         HAVING count(*) <> cardinality(components)
             OR NOT (array_agg(component) @> components AND components @> array_agg(component))
         UNION ALL
         SELECT format('student %s: section %s (%s) is not linked to lecture %s of %s',
                       p.student_id, p.id, p.component, q.id, p.course_code)
           FROM placed p
           JOIN placed q ON q.student_id = p.student_id AND q.term_id = p.term_id
                        AND q.course_code = p.course_code AND q.component = q.components[1]
          WHERE p.component <> p.components[1]
            AND NOT EXISTS (SELECT 1 FROM section_links l
                             WHERE (l.primary_id = q.id AND l.linked_id = p.id)
                                OR (l.primary_id = p.id AND l.linked_id = q.id))",
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
            -- A time-conflict permit used by the place in either section allows the clash.
            AND NOT EXISTS (SELECT 1 FROM permit_uses u JOIN permits p ON p.id = u.permit_id
                             WHERE p.kind = 'time_conflict' AND u.student_id = a.student_id
                               AND u.section_id IN (a.section_id, b.section_id))
            AND (mb->>'start')::time < (ma->>'end')::time",
    ),
];
