//! Shard hashing: [`shard_of`], the stable placement of sections and students on the
//! cluster's shards. A pure leaf, so the store (which records each row's shard) and the
//! cluster (which routes by it) both use it without importing each other.

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
