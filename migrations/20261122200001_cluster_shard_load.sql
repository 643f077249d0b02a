-- Each node reports the load of the shards it owns with its heartbeat (decisions per second
-- by shard, `{"17": 250.0, ...}`), for the operator's rebalance by load.
ALTER TABLE cluster_nodes ADD COLUMN shard_load jsonb NOT NULL DEFAULT '{}';
