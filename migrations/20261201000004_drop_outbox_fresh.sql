-- no-transaction
-- Published by watermark now (see outbox_watermark): this partial index over rows never
-- tried took an entry from every insert and serves nothing any more.
-- Outside a transaction, one statement per migration: the outbox is written on the hot path.
DROP INDEX CONCURRENTLY IF EXISTS outbox_fresh;
