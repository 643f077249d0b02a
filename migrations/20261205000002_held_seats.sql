-- Decisions over several sections (a linked lecture + lab + recitation, a cart's linked
-- set): Try-Confirm/Cancel with durable held seats.
--  * `decisions` holds one row per such decision, the one place it is made: it goes
--    pending -> confirmed or pending -> cancelled by a conditional UPDATE, exactly once.
--    A pending row past its deadline (by the database clock) can only be cancelled.
--  * each section of the decision first commits a `held` enrollment row (it counts against
--    the capacity, so `seats_taken` = enrolled + held, but it is no enrollment); once the
--    row is confirmed the hold becomes `enrolled`, once cancelled it is released
--    (`dropped`). `finished_at` is set when every part has been carried out.
ALTER TABLE enrollments DROP CONSTRAINT enrollments_status_check;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_status_check
    CHECK (status IN ('enrolled', 'waitlisted', 'held', 'dropped'));
ALTER TABLE enrollments ADD COLUMN decision_id uuid;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_held_has_decision
    CHECK (status <> 'held' OR decision_id IS NOT NULL);
CREATE INDEX enrollments_held ON enrollments (decision_id) WHERE status = 'held';
-- A waitlist place taken with "drop if enrolled": the section left, in the same decision,
-- when the seat comes (the promotion holds the seat and records the decision confirmed).
ALTER TABLE enrollments ADD COLUMN drop_if_enrolled uuid REFERENCES sections(id);

CREATE TABLE decisions (
    id           uuid PRIMARY KEY,
    -- The student's request. A retry of it gets this decision's end, unless it was
    -- cancelled for want of an answer (`unavailable`, `expired`, `abandoned`): then the
    -- retry is decided afresh, under a new decision id.
    request_id   uuid NOT NULL,
    student_id   uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'confirmed', 'cancelled')),
    -- Sections a seat is held in, then confirmed (or released).
    take         uuid[] NOT NULL,
    -- Sections left once the decision is confirmed (a swap inside a linked set, or a
    -- linked set dropped whole: then nothing is taken and it is confirmed at once).
    leave        uuid[] NOT NULL DEFAULT '{}',
    deadline     timestamptz NOT NULL,
    -- Why it was cancelled: the first part's refusal code, `expired`, `unavailable`.
    reason       text,
    -- The section whose refusal cancelled it.
    refused_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz,
    finished_at  timestamptz,
    CHECK (cardinality(take) + cardinality(leave) BETWEEN 1 AND 12),
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    CHECK (finished_at IS NULL OR state <> 'pending')
);
CREATE INDEX decisions_request ON decisions (request_id, created_at);
CREATE INDEX decisions_unfinished ON decisions (student_id, created_at) WHERE finished_at IS NULL;
CREATE INDEX decisions_unfinished_age ON decisions (created_at) WHERE finished_at IS NULL;

CREATE OR REPLACE FUNCTION sections_counters_match() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seated integer;
    waiting integer;
BEGIN
    SELECT count(*) FILTER (WHERE status IN ('enrolled', 'held')),
           count(*) FILTER (WHERE status = 'waitlisted')
      INTO seated, waiting
      FROM enrollments WHERE section_id = NEW.id AND status <> 'dropped';
    IF seated <> NEW.seats_taken OR waiting <> NEW.waitlist_length THEN
        RAISE EXCEPTION 'section % counters (%/%) do not match rows (%/%)',
            NEW.id, NEW.seats_taken, NEW.waitlist_length, seated, waiting
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
