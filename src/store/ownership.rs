//! Reads of shard ownership (`shard_owners`) for the operations endpoints. Claims, epochs
//! and handoff are written by the cluster module.

use super::DbResult;
use sqlx::PgPool;

/// How many shards `node` owns now.
pub async fn shards_owned(pool: &PgPool, node: &str) -> DbResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM shard_owners WHERE node_id = $1")
            .bind(node)
            .fetch_one(pool)
            .await?,
    )
}
