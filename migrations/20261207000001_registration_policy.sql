-- Registration policy as registrars run it:
--  * student attributes beside standing: majors, program, cohort (upper case codes);
--  * reserved seat pools per section: seats set aside for students with one attribute,
--    released to everyone at a time (judged by the database clock); an enrollment row
--    records the pool its seat counts against (`reserve_id`; no foreign key: a replaced
--    pool's seats stay history). A pool never seats more than its seats: the section actor
--    enforces it and `registrar verify` checks it; the capacity CHECK still bounds them all;
--  * section restrictions: include or exclude students by an attribute;
--  * time tickets: a student's registration appointment in a term, which replaces the
--    opening of their standing's window.
ALTER TABLE students
    ADD COLUMN majors text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(majors) <= 5),
    ADD COLUMN program text CHECK (program ~ '^[A-Z0-9_-]{1,16}$'),
    ADD COLUMN cohort text CHECK (cohort ~ '^[A-Z0-9_-]{1,16}$');

CREATE TABLE section_reserves (
    id           uuid PRIMARY KEY,
    section_id   uuid NOT NULL REFERENCES sections(id) ON DELETE CASCADE,
    -- The order a student who matches several pools tries them.
    position     smallint NOT NULL CHECK (position >= 0),
    attribute    text NOT NULL CHECK (attribute IN ('major', 'program', 'cohort', 'standing')),
    value        text NOT NULL CHECK (value ~ '^[A-Z0-9_-]{1,16}$'),
    seats        integer NOT NULL CHECK (seats BETWEEN 0 AND 100000),
    release_at   timestamptz,
    -- Set by the commit that released it (at its release time, by the section's owner).
    released_at  timestamptz,
    UNIQUE (section_id, position)
);
CREATE INDEX section_reserves_due ON section_reserves (release_at)
    WHERE released_at IS NULL AND release_at IS NOT NULL;

ALTER TABLE enrollments ADD COLUMN reserve_id uuid;

ALTER TABLE sections ADD COLUMN restrictions jsonb NOT NULL DEFAULT '[]';

CREATE TABLE time_tickets (
    term_id     uuid NOT NULL REFERENCES terms(id) ON DELETE CASCADE,
    student_id  uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    opens_at    timestamptz NOT NULL,
    closes_at   timestamptz,
    CHECK (closes_at IS NULL OR closes_at > opens_at),
    PRIMARY KEY (student_id, term_id)
);
