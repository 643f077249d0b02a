-- no-transaction
-- A section's recent accepted decisions, read at each activation. Partial: under a flash
-- most attempts are refusals (the section is full), and those take no entry.
-- Outside a transaction, one statement per migration: attempts are written on the hot path.
CREATE INDEX CONCURRENTLY IF NOT EXISTS registration_attempts_accepted
    ON registration_attempts (section_id, created_at) WHERE decided IS NOT NULL;
