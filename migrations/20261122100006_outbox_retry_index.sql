-- no-transaction
-- The relay's claim of events due for a retry (returned as unroutable before), by the
-- time they are due.
-- Built CONCURRENTLY (outside a transaction, one statement per migration): the outbox
-- is written on the hot path and a plain CREATE INDEX would block those writes for the
-- whole build. If a build fails it leaves an INVALID index: drop it and rerun the
-- migrations.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_retry ON outbox (next_attempt_at)
    WHERE published_at IS NULL AND next_attempt_at IS NOT NULL;
