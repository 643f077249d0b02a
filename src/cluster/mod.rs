//! Sharding and ownership: which shard a section belongs to, and this node's claim on its
//! shards in `shard_owners`. Every claim bumps the shard's epoch, which fences out any
//! older owner's writes (see `store::sections`). Today a node claims every shard at start
//! (single-node mode); membership, the coordinator and handoff between nodes are not built
//! yet. [`plan`] holds the coordinator's pure shard planning they will use.

pub mod plan;

use sqlx::PgPool;

/// The shard of a section: FNV-1a (64-bit) over the id's 16 bytes, modulo `shards`.
/// Written out here rather than taken from a hasher crate so it can never change between
/// versions or platforms: the shard of a stored section must stay where it is.
pub fn shard_of(section: uuid::Uuid, shards: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = section
        .as_bytes()
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    (hash % u64::from(shards.max(1))) as u32
}

/// Register this node and take every shard, bumping each epoch (single-node mode).
pub async fn claim_all_shards(
    pool: &PgPool,
    node_id: &str,
    address: &str,
    shards: u32,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO cluster_nodes (id, address) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, started_at = now(), heartbeat_at = now()",
    )
    .bind(node_id)
    .bind(address)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO shard_owners (shard, node_id, epoch, state)
         SELECT g, $1, 1, 'active' FROM generate_series(0, $2 - 1) AS g
         ON CONFLICT (shard) DO UPDATE SET node_id = EXCLUDED.node_id,
             epoch = shard_owners.epoch + 1, state = 'active'",
    )
    .bind(node_id)
    .bind(shards as i32)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_hash_is_pinned() {
        // Pinned values: changing the hash would move every stored section.
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(shard_of(id, 1024), PINNED_1024);
        assert_eq!(shard_of(uuid::Uuid::nil(), 1024), 101);
        assert!(shard_of(id, 7) < 7);
        assert_eq!(shard_of(id, 1), 0);
    }

    /// FNV-1a of the id above, computed independently.
    const PINNED_1024: u32 = 165;
}
