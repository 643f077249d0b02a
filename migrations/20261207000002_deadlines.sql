-- Add/drop deadlines and withdrawals:
--  * a term's last day to add, to drop without a record, and to withdraw, each optional,
--    in that order when given (judged by the database clock on the student's home node);
--  * a withdrawal is a drop after the drop deadline: the seat is freed like any drop
--    (`status = 'dropped'`, so every query of active places and the unique index of one
--    active place stay as they are) and the row keeps a W: `withdrawn_at`, set in the
--    drop's own commit. Only a seat can be withdrawn from (never a waitlist place);
--  * a linked set dropped whole after the drop deadline is one decision: the row records
--    that its drops are withdrawals, so whoever carries it out (the home, a retry, the
--    finisher on another node) leaves the same W;
--  * the `analytics` consumer counts withdrawals apart from drops.
ALTER TABLE terms
    ADD COLUMN add_by timestamptz,
    ADD COLUMN drop_by timestamptz,
    ADD COLUMN withdraw_by timestamptz,
    -- A comparison with a missing deadline is NULL, which passes: only given ones count.
    ADD CONSTRAINT terms_deadlines_in_order
        CHECK (add_by <= drop_by AND drop_by <= withdraw_by AND add_by <= withdraw_by);

ALTER TABLE enrollments ADD COLUMN withdrawn_at timestamptz;
-- Every existing row has no W, so the constraint is not checked against them: NOT VALID
-- spares a scan of the whole table under its lock. New and updated rows are checked.
ALTER TABLE enrollments ADD CONSTRAINT enrollments_withdrawn_from_a_seat
    CHECK (withdrawn_at IS NULL OR (status = 'dropped' AND enrolled_at IS NOT NULL))
    NOT VALID;
-- A student's W history (the schedule lists it). Built in the migration's transaction (one
-- file for this change): the build reads the table once while writes to it wait; the
-- index itself is empty until the first withdrawal.
CREATE INDEX enrollments_student_withdrawn ON enrollments (student_id)
    WHERE withdrawn_at IS NOT NULL;

ALTER TABLE decisions ADD COLUMN withdraw boolean NOT NULL DEFAULT false;

ALTER TABLE section_stats ADD COLUMN withdrawn bigint NOT NULL DEFAULT 0;
