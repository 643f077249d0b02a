-- Linked sections and corequisites. A course may require components (lecture, lab,
-- recitation, ...), the first one its primary: a student takes exactly one section of each,
-- and every non-primary section must be linked to the chosen primary (Banner's link
-- identifiers, PeopleSoft's related sections). An empty list, the default, keeps the old
-- meaning: any one section of the course, no links. Corequisites are course codes to take
-- in the same term (or to have completed).
--  * courses.components: at most 4, each a known component, no repeats;
--  * sections.component: which component the section is ('lecture' for a plain course);
--  * section_links: (primary, linked) pairs, e.g. (lecture, lab); that both sections are of
--    one course and term, and that one side is the primary, the admin API checks.

CREATE FUNCTION registrar_known_components(c text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT
    RETURN c <@ ARRAY['lecture','lab','recitation','seminar','studio']::text[]
       AND cardinality(c) = (SELECT count(DISTINCT x) FROM unnest(c) AS x);

ALTER TABLE courses
    ADD COLUMN components text[] NOT NULL DEFAULT '{}'
        CONSTRAINT courses_components_known
        CHECK (cardinality(components) <= 4 AND registrar_known_components(components)),
    ADD COLUMN corequisites text[] NOT NULL DEFAULT '{}'
        CONSTRAINT courses_corequisites_not_self
        CHECK (cardinality(corequisites) <= 20 AND NOT (code = ANY (corequisites)));

ALTER TABLE sections
    ADD COLUMN component text NOT NULL DEFAULT 'lecture'
        CONSTRAINT sections_component_known
        CHECK (component IN ('lecture','lab','recitation','seminar','studio'));

CREATE TABLE section_links (
    primary_id  uuid NOT NULL REFERENCES sections(id) ON DELETE CASCADE,
    linked_id   uuid NOT NULL REFERENCES sections(id) ON DELETE CASCADE,
    PRIMARY KEY (primary_id, linked_id),
    CONSTRAINT section_links_not_self CHECK (primary_id <> linked_id)
);
CREATE INDEX section_links_linked ON section_links (linked_id);
