-- Variable credits and grading bases:
--  * a course may be taken for a range of credits (`min_credits`..`max_credits`, its
--    `credits` within it: what an enrollment that names none gets) and under the grading
--    bases it lists (`grading_bases`, in the order letter, pass_fail, audit). Existing
--    courses keep fixed credits and letter grading;
--  * `enrollment_options` holds what a student chose for a section: written by the
--    student's home node, under the student's lock, before the section's actor is asked for
--    the seat, so a seat acknowledged always has its options committed. The section actors
--    never read it: seats do not care about credits. A place with no row (taken before
--    this migration, or by a path that names none) is the course's credits, graded by its
--    default basis. A row outlives a drop (it is only read for active places) and is
--    replaced by the next enroll in the section;
--  * a cart item may carry the options to enroll with (none: chosen at the submit).
ALTER TABLE courses
    ADD COLUMN min_credits smallint,
    ADD COLUMN max_credits smallint,
    ADD COLUMN grading_bases text[] NOT NULL DEFAULT '{letter}';
UPDATE courses SET min_credits = credits, max_credits = credits;
ALTER TABLE courses
    -- Insertions that name no range get a fixed one, by the trigger below.
    ADD CONSTRAINT courses_credit_range
        CHECK (min_credits BETWEEN 0 AND credits AND max_credits BETWEEN credits AND 12),
    ADD CONSTRAINT courses_grading_bases
        CHECK (cardinality(grading_bases) BETWEEN 1 AND 3
               AND grading_bases <@ ARRAY['letter', 'pass_fail', 'audit']);

-- A course written without a range (an older client, an import of a file without the
-- columns) is of fixed credits: the range follows `credits`, also when an update changes
-- the credits of a fixed course and leaves its range alone.
CREATE FUNCTION courses_fixed_range() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.min_credits = OLD.credits AND OLD.max_credits = OLD.credits
       AND NEW.min_credits = OLD.min_credits AND NEW.max_credits = OLD.max_credits THEN
        NEW.min_credits := NEW.credits;
        NEW.max_credits := NEW.credits;
    END IF;
    NEW.min_credits := COALESCE(NEW.min_credits, NEW.credits);
    NEW.max_credits := COALESCE(NEW.max_credits, NEW.credits);
    RETURN NEW;
END $$;
CREATE TRIGGER courses_fixed_range BEFORE INSERT OR UPDATE ON courses
    FOR EACH ROW EXECUTE FUNCTION courses_fixed_range();
ALTER TABLE courses ALTER COLUMN min_credits SET NOT NULL, ALTER COLUMN max_credits SET NOT NULL;

CREATE TABLE enrollment_options (
    student_id    uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    section_id    uuid NOT NULL REFERENCES sections(id) ON DELETE CASCADE,
    credits       smallint NOT NULL CHECK (credits BETWEEN 0 AND 12),
    grading_basis text NOT NULL CHECK (grading_basis IN ('letter', 'pass_fail', 'audit')),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, section_id)
);

ALTER TABLE cart_items
    ADD COLUMN credits smallint CHECK (credits BETWEEN 0 AND 12),
    ADD COLUMN grading_basis text CHECK (grading_basis IN ('letter', 'pass_fail', 'audit'));
