-- no-transaction
-- Unroutable events are retried from the outbox_retries table now (see outbox_watermark).
-- Outside a transaction, one statement per migration: the outbox is written on the hot path.
DROP INDEX CONCURRENTLY IF EXISTS outbox_retry;
