-- Waitlist offers: a section in `offer` mode gives a freed seat to the waitlist's next
-- student as an offer, held for them (counted in seats_taken) until they accept, decline or
-- the offer expires (`offer_expires_at`, by the database clock); then it goes to the next.
--  * an offered row is `offered` (active, seated); accepted it becomes `enrolled`;
--    declined or expired it is `dropped` with `offer_ended` saying which;
--  * `offered_at` stays on the row for the record (and for `registrar verify`'s one event
--    per change: `waitlist.offered`, then `waitlist.promoted` or the offer's end).
ALTER TABLE sections
    ADD COLUMN waitlist_mode text NOT NULL DEFAULT 'auto' CHECK (waitlist_mode IN ('auto', 'offer')),
    ADD COLUMN offer_window_secs integer NOT NULL DEFAULT 86400
        CHECK (offer_window_secs BETWEEN 60 AND 2592000);

ALTER TABLE enrollments DROP CONSTRAINT enrollments_status_check;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_status_check
    CHECK (status IN ('enrolled', 'waitlisted', 'held', 'offered', 'dropped'));
ALTER TABLE enrollments
    ADD COLUMN offered_at timestamptz,
    ADD COLUMN offer_expires_at timestamptz,
    ADD COLUMN offer_ended text CHECK (offer_ended IN ('declined', 'expired')),
    ADD CONSTRAINT enrollments_offer_has_expiry
        CHECK (status <> 'offered' OR offer_expires_at IS NOT NULL);
CREATE INDEX enrollments_offers_due ON enrollments (offer_expires_at) WHERE status = 'offered';

CREATE OR REPLACE FUNCTION sections_counters_match() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seated integer;
    waiting integer;
BEGIN
    SELECT count(*) FILTER (WHERE status IN ('enrolled', 'held', 'offered')),
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
