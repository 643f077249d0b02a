-- A student's cart: sections staged before the window opens (on the server, so it
-- survives a new device), submitted in one request when it opens (`service::cart`).
CREATE TABLE cart_items (
    student_id  uuid NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    section_id  uuid NOT NULL REFERENCES sections(id) ON DELETE CASCADE,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, section_id)
);
