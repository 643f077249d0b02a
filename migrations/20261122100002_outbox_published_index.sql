-- no-transaction
-- An index for the pruner's DELETE of published outbox rows past their retention, so
-- each batch of it is a short index range scan. Unpublished rows are never pruned: they
-- stay out of the index.
-- Built CONCURRENTLY (outside a transaction, one statement per migration): the table is
-- written on the hot path and a plain CREATE INDEX would block those writes for the whole
-- build. If a build fails it leaves an INVALID index: drop it and rerun the migrations.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
