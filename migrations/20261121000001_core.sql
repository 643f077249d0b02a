-- Core schema of registrar: catalog, students, windows, enrollments, audit trail, outbox and
-- shard ownership. Invariants the database enforces on its own (DESIGN.md):
--  * no oversell: CHECK (seats_taken <= capacity) plus a deferred check that the counters
--    equal the enrollment rows at commit;
--  * one active place per (section, student): a partial unique index;
--  * fencing: section writes go through shard_owners epochs (see store/sections.rs).

CREATE TABLE terms (
    id          uuid PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE courses (
    code           text PRIMARY KEY CHECK (code ~ '^[A-Z]{2,8}[0-9]{2,4}[A-Z]?$'),
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    credits        smallint NOT NULL CHECK (credits BETWEEN 0 AND 12),
    prerequisites  text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sections (
    id                 uuid PRIMARY KEY,
    term_id            uuid NOT NULL REFERENCES terms(id),
    course_code        text NOT NULL REFERENCES courses(code),
    section_code       text NOT NULL CHECK (section_code ~ '^[A-Za-z0-9]{1,8}$'),
    capacity           integer NOT NULL CHECK (capacity >= 0),
    waitlist_capacity  integer NOT NULL CHECK (waitlist_capacity >= 0),
    meetings           jsonb NOT NULL DEFAULT '[]',
    seats_taken        integer NOT NULL DEFAULT 0 CHECK (seats_taken >= 0),
    waitlist_length    integer NOT NULL DEFAULT 0 CHECK (waitlist_length >= 0),
    -- The epoch of the last owner that wrote this row; a write under an older epoch fails.
    owner_epoch        bigint NOT NULL DEFAULT 0,
    shard              integer NOT NULL CHECK (shard >= 0),
    -- Never reused: waitlist order survives restarts.
    next_waitlist_seq  bigint NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (term_id, course_code, section_code),
    CONSTRAINT no_oversell CHECK (seats_taken <= capacity),
    CONSTRAINT waitlist_bounded CHECK (waitlist_length <= waitlist_capacity)
);
CREATE INDEX sections_term_course ON sections (term_id, course_code, section_code);

CREATE TABLE students (
    id                 uuid PRIMARY KEY,
    username           text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.-]{1,64}$'),
    password_hash      text NOT NULL,
    role               text NOT NULL DEFAULT 'student' CHECK (role IN ('student', 'admin', 'operator')),
    standing           text CHECK (standing IN ('freshman', 'sophomore', 'junior', 'senior', 'graduate')),
    max_credits        smallint NOT NULL DEFAULT 18 CHECK (max_credits BETWEEN 0 AND 40),
    completed_courses  text[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE holds (
    id          uuid PRIMARY KEY,
    student_id  uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX holds_student ON holds (student_id);

CREATE TABLE registration_windows (
    id         uuid PRIMARY KEY,
    term_id    uuid NOT NULL REFERENCES terms(id) ON DELETE CASCADE,
    standing   text NOT NULL CHECK (standing IN ('freshman', 'sophomore', 'junior', 'senior', 'graduate')),
    opens_at   timestamptz NOT NULL,
    closes_at  timestamptz NOT NULL,
    CHECK (closes_at > opens_at),
    UNIQUE (term_id, standing)
);

CREATE TABLE enrollments (
    id            bigserial PRIMARY KEY,
    section_id    uuid NOT NULL REFERENCES sections(id),
    student_id    uuid NOT NULL REFERENCES students(id),
    status        text NOT NULL CHECK (status IN ('enrolled', 'waitlisted', 'dropped')),
    -- FIFO key of a waitlist entry (kept after promotion, for the record).
    waitlist_seq  bigint,
    -- Position when the student joined the waitlist (the current one is the rank by seq).
    joined_position integer,
    request_id    uuid NOT NULL,
    epoch         bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    enrolled_at   timestamptz,
    dropped_at    timestamptz,
    CHECK (status <> 'waitlisted' OR waitlist_seq IS NOT NULL)
);
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (section_id, student_id) WHERE status <> 'dropped';
CREATE INDEX enrollments_student_active ON enrollments (student_id) WHERE status <> 'dropped';
CREATE INDEX enrollments_section_status ON enrollments (section_id, status) WHERE status <> 'dropped';

-- Every attempt, accepted or refused, with its reason code.
CREATE TABLE registration_attempts (
    id          bigserial PRIMARY KEY,
    request_id  uuid NOT NULL,
    student_id  uuid,
    section_id  uuid,
    action      text NOT NULL,
    outcome     text NOT NULL,
    code        text,
    position    integer,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registration_attempts_student ON registration_attempts (student_id, created_at);

-- First answers to requests that carried an Idempotency-Key.
CREATE TABLE idempotency_keys (
    student_id  uuid NOT NULL,
    key         text NOT NULL,
    status      smallint NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, key)
);

-- Transactional outbox: one row per committed change, written in the same transaction.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    routing_key   text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE cluster_nodes (
    id            text PRIMARY KEY,
    address       text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shard_owners (
    shard    integer PRIMARY KEY CHECK (shard >= 0),
    node_id  text REFERENCES cluster_nodes(id),
    epoch    bigint NOT NULL DEFAULT 0,
    state    text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'moving', 'unowned'))
);

-- The counters must equal the rows when a transaction commits: a bug in the actor or a
-- stale writer fails instead of drifting.
CREATE FUNCTION sections_counters_match() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    enrolled integer;
    waiting integer;
BEGIN
    SELECT count(*) FILTER (WHERE status = 'enrolled'), count(*) FILTER (WHERE status = 'waitlisted')
      INTO enrolled, waiting
      FROM enrollments WHERE section_id = NEW.id AND status <> 'dropped';
    IF enrolled <> NEW.seats_taken OR waiting <> NEW.waitlist_length THEN
        RAISE EXCEPTION 'section % counters (%/%) do not match rows (%/%)',
            NEW.id, NEW.seats_taken, NEW.waitlist_length, enrolled, waiting
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER sections_counters_match
    AFTER UPDATE OF seats_taken, waitlist_length ON sections
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sections_counters_match();
