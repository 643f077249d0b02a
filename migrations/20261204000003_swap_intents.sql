-- Swaps under way. A swap is written here before its add is sent and removed once it has
-- ended in exactly one of its two sections: the add refused (the student keeps the drop
-- section), or the add taken and the drop done. A row that outlives its request (the
-- drop's owner could not commit, the home node died between the two halves) is finished
-- by the student's home node, forwards only: the parts are re-sent under their own
-- request ids, which the section actors recognise, so nothing is decided twice.
CREATE TABLE swap_intents (
    request_id    uuid PRIMARY KEY,
    student_id    uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    drop_section  uuid NOT NULL REFERENCES sections(id),
    add_section   uuid NOT NULL REFERENCES sections(id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX swap_intents_student ON swap_intents (student_id);
CREATE INDEX swap_intents_created ON swap_intents (created_at);
