-- Event consumers: each consumer records the event ids it applied in the same transaction
-- as the effect, so a redelivered event is applied once.

CREATE TABLE consumed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    consumed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- The `notify` consumer's output, read at GET /api/v1/students/me/notifications.
CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    student_id  uuid NOT NULL,
    event_id    uuid NOT NULL UNIQUE,
    kind        text NOT NULL,
    message     text NOT NULL,
    section_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX notifications_student ON notifications (student_id, id DESC);

-- The `analytics` consumer's figures.
CREATE TABLE section_stats (
    section_id      uuid PRIMARY KEY,
    term_id         uuid NOT NULL,
    enrolled        bigint NOT NULL DEFAULT 0,
    waitlisted      bigint NOT NULL DEFAULT 0,
    dropped         bigint NOT NULL DEFAULT 0,
    promoted        bigint NOT NULL DEFAULT 0,
    first_event_at  timestamptz,
    filled_at       timestamptz
);
CREATE INDEX section_stats_term ON section_stats (term_id);

CREATE TABLE enrollment_minutes (
    term_id  uuid NOT NULL,
    minute   timestamptz NOT NULL,
    enrolled bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (term_id, minute)
);
