-- Outbox rows the broker returned as unroutable (no queue bound for their routing key)
-- stay unpublished and are retried later: `attempts` counts the returns, and the relay
-- skips a row until `next_attempt_at`, so one unroutable kind cannot hold up the others.
-- Both columns are cheap to add (no table rewrite: a constant default and a null).
ALTER TABLE outbox
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz;
