-- Each node's heartbeat also reports its client-facing figures for the operator console:
-- requests answered per second, the p99 latency of registration requests and the 503
-- `overloaded` answers per second over its last heartbeat interval, and whether its broker
-- link and its Redis mirror work.
ALTER TABLE cluster_nodes
    ADD COLUMN requests_per_s double precision NOT NULL DEFAULT 0,
    ADD COLUMN p99_ms double precision,
    ADD COLUMN overloaded_per_s double precision NOT NULL DEFAULT 0,
    ADD COLUMN broker_connected boolean NOT NULL DEFAULT false,
    ADD COLUMN redis text NOT NULL DEFAULT 'off' CHECK (redis IN ('ok', 'degraded', 'off'));
