-- Permits (overrides): a registrar's (or instructor's) leave for one student to pass one
-- rule, for one section or, for a credit overload, for a whole term.
--  * kinds: capacity (a seat beyond a full section's capacity; `jump_waitlist` says
--    whether ahead of students waiting), prerequisite, time_conflict, credit_overload (a
--    term permit, up to `max_credits`), restriction, consent (for sections that require
--    the instructor's consent), late_add (past the term's add deadline);
--  * single-use (used up by the first place it allows) or reusable until `expires_at`;
--    either may also expire; a credit overload is never single-use: it holds for its term;
--    revoked permits stay for the record;
--  * each use is a row of `permit_uses`, written in the same commit as the place it
--    allowed (by the section's owner); a use by a held seat whose decision is cancelled is
--    deleted with the release. One use at most of a single-use permit: a unique index.
--  * a seat beyond the capacity is marked on its enrollment (`over_capacity`): it adds
--    one to the section's capacity while held (so `seats_taken <= capacity` holds) and
--    takes it away when left.
ALTER TABLE sections ADD COLUMN consent_required boolean NOT NULL DEFAULT false;

ALTER TABLE enrollments ADD COLUMN over_capacity boolean NOT NULL DEFAULT false;

CREATE TABLE permits (
    id             uuid PRIMARY KEY,
    student_id     uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    term_id        uuid NOT NULL REFERENCES terms(id) ON DELETE CASCADE,
    section_id     uuid REFERENCES sections(id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('capacity', 'prerequisite', 'time_conflict',
                       'credit_overload', 'restriction', 'consent', 'late_add')),
    max_credits    smallint CHECK (max_credits BETWEEN 1 AND 40),
    jump_waitlist  boolean NOT NULL DEFAULT false,
    single_use     boolean NOT NULL DEFAULT true,
    expires_at     timestamptz,
    note           text CHECK (length(note) <= 500),
    granted_by     uuid REFERENCES students(id) ON DELETE SET NULL,
    granted_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_by     uuid REFERENCES students(id) ON DELETE SET NULL,
    CHECK ((kind = 'credit_overload') = (section_id IS NULL)),
    CHECK ((kind = 'credit_overload') = (max_credits IS NOT NULL)),
    CHECK (kind = 'capacity' OR NOT jump_waitlist),
    -- A credit overload holds for its term (until it expires, if it does).
    CHECK (single_use OR expires_at IS NOT NULL OR kind = 'credit_overload'),
    CHECK (NOT (single_use AND kind = 'credit_overload'))
);
CREATE INDEX permits_student_term ON permits (student_id, term_id);
CREATE INDEX permits_section ON permits (section_id) WHERE section_id IS NOT NULL;

CREATE TABLE permit_uses (
    permit_id    uuid NOT NULL REFERENCES permits(id) ON DELETE CASCADE,
    single_use   boolean NOT NULL,
    section_id   uuid NOT NULL,
    student_id   uuid NOT NULL,
    request_id   uuid NOT NULL,
    -- The decision of a held seat: a release gives the use back.
    decision_id  uuid,
    used_at      timestamptz NOT NULL,
    PRIMARY KEY (permit_id, request_id, section_id)
);
CREATE UNIQUE INDEX permit_uses_once ON permit_uses (permit_id) WHERE single_use;
CREATE INDEX permit_uses_student ON permit_uses (student_id);
