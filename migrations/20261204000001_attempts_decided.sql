-- The answer of each accepted decision, so a section actor activated again (a reload, a
-- passivation, a move, a failover) recognises a request it already decided when the
-- request is sent again, instead of deciding it twice (a committed drop re-sent would
-- otherwise read as "not enrolled"). NULL for refusals and for rows from before.
ALTER TABLE registration_attempts ADD COLUMN decided jsonb;
