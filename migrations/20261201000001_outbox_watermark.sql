-- The outbox is published by a watermark instead of a mark per row: each row carries the
-- id of the transaction that wrote it (`txid`, from pg_current_xact_id(), 64 bits, never
-- wraps), and one cursor row records how far the relays have published, in (txid, id)
-- order. A relay reads only rows whose transaction is older than every transaction still
-- running (pg_snapshot_xmin of its snapshot): no row can ever appear below that point, so
-- the cursor never passes an event that commits later. Publishing then costs one cursor
-- update per round instead of an UPDATE (a new row version and its index entries) per
-- event, and the partial indexes over unpublished rows, written by every insert, go.
--
-- Events the broker returned as unroutable move to `outbox_retries` (rare) and are retried
-- from there with a growing delay, as before.
--
-- Rows from before this migration: published ones keep txid NULL (below every cursor;
-- the pruner takes them by `published_at` as before); unpublished ones never tried get
-- txid 1, above the initial cursor, so the relay publishes them first; unpublished ones
-- put off as unroutable get txid 0 (below the cursor) and a row in `outbox_retries`.
ALTER TABLE outbox ADD COLUMN txid bigint;
ALTER TABLE outbox ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text)::bigint;

CREATE TABLE outbox_cursor (
    -- One row: the table cannot hold a second.
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Every event at or below (txid, id) has been published (or moved to outbox_retries).
    txid        bigint NOT NULL,
    id          bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox_cursor (txid, id) VALUES (0, 9223372036854775807);

CREATE TABLE outbox_retries (
    id               bigint PRIMARY KEY,
    attempts         integer NOT NULL,
    next_attempt_at  timestamptz NOT NULL
);
CREATE INDEX outbox_retry_due ON outbox_retries (next_attempt_at);

INSERT INTO outbox_retries (id, attempts, next_attempt_at)
    SELECT id, attempts, next_attempt_at FROM outbox
     WHERE published_at IS NULL AND next_attempt_at IS NOT NULL;
UPDATE outbox SET txid = 0 WHERE published_at IS NULL AND next_attempt_at IS NOT NULL;
UPDATE outbox SET txid = 1 WHERE published_at IS NULL AND next_attempt_at IS NULL;
ANALYZE outbox_cursor;
