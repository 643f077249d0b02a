-- no-transaction
-- The relay's claim of events never tried: unpublished rows not put off for a retry, in
-- id order. Rows the broker returned as unroutable leave this index (next_attempt_at is
-- set), so a pile of them cannot slow down every claim (`outbox_unpublished` holds them
-- all and still serves the backlog count).
-- Built CONCURRENTLY (outside a transaction, one statement per migration): the outbox
-- is written on the hot path and a plain CREATE INDEX would block those writes for the
-- whole build. If a build fails it leaves an INVALID index: drop it and rerun the
-- migrations.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_fresh ON outbox (id)
    WHERE published_at IS NULL AND next_attempt_at IS NULL;
