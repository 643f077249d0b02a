-- no-transaction
-- The relay's read of the events past the cursor, in (txid, id) order, and the pruner's
-- walk from the oldest.
-- Outside a transaction, one statement per migration: the outbox is written on the hot path.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_order ON outbox (txid, id);
