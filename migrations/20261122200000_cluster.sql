-- The cluster: membership with leases, the coordinator's lease, the shard count fixed at
-- creation, and the record of shard moves.
--
--  * cluster_nodes: one row per node id; `incarnation` changes at every start (and when a
--    node that was declared dead rejoins), so a paused process can never act as its
--    successor. The lease is `heartbeat_at` + the lease time, judged by the database clock.
--  * cluster_coordinator: a single row; the node holding an unexpired lease on it assigns
--    shards. Every coordinator transaction re-checks the lease under a row lock.
--  * shard_moves: every handoff (rebalance, drain, operator move), with its outcome.

ALTER TABLE cluster_nodes
    ADD COLUMN incarnation uuid,
    ADD COLUMN state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('joining', 'active', 'draining', 'left', 'dead')),
    -- Load figures written with each heartbeat, for the operator reads.
    ADD COLUMN decisions_per_s double precision NOT NULL DEFAULT 0,
    ADD COLUMN in_flight integer NOT NULL DEFAULT 0,
    ADD COLUMN hot_sections jsonb NOT NULL DEFAULT '[]';

CREATE TABLE cluster_coordinator (
    id           smallint PRIMARY KEY CHECK (id = 1),
    node_id      text,
    incarnation  uuid,
    lease_until  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO cluster_coordinator (id) VALUES (1);

-- The shard count, written by the first node; a node configured otherwise refuses to start.
CREATE TABLE cluster_settings (
    id      smallint PRIMARY KEY CHECK (id = 1),
    shards  integer NOT NULL CHECK (shards > 0)
);

CREATE TABLE shard_moves (
    id             bigserial PRIMARY KEY,
    shard          integer NOT NULL CHECK (shard >= 0),
    from_node      text NOT NULL,
    to_node        text NOT NULL,
    reason         text NOT NULL CHECK (reason IN ('rebalance', 'drain', 'operator')),
    requested_by   text NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'done', 'failed')),
    error          text,
    held_requests  integer NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
-- At most one open move per shard.
CREATE UNIQUE INDEX shard_moves_one_open ON shard_moves (shard) WHERE state IN ('pending', 'running');
CREATE INDEX shard_moves_started ON shard_moves (started_at);
