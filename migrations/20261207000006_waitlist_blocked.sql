-- A waiting student whose rules no longer let them take a seat (a hold put on them, a
-- lower credit limit, other attributes) is skipped at promotion, keeping their place, as
-- PeopleSoft's waitlist job skips them: `blocked_reason` is the code of the rule they
-- fail (NULL: not skipped), set and cleared by the section's owner in its commits;
-- `blocked_at` is when the row was first skipped (kept, so `registrar verify` knows a
-- newer entry may have been promoted past it).
ALTER TABLE enrollments
    ADD COLUMN blocked_reason text CHECK (blocked_reason ~ '^[a-z_]{1,64}$'),
    ADD COLUMN blocked_at timestamptz;

-- Students whose waitlist places must be judged again (their rule inputs changed): set to
-- the time of the change in its transaction, cleared once every section has the judgement
-- (only if no later change came meanwhile).
ALTER TABLE students ADD COLUMN waitlists_stale_at timestamptz;
CREATE INDEX students_waitlists_stale ON students (waitlists_stale_at)
    WHERE waitlists_stale_at IS NOT NULL;
