//! What the Redis module sends and holds: [`SeatCounts`] (a section's counts with their
//! [`Version`], as the mirror's hashes, the seat channel and the seat streams carry them),
//! [`SeatMessage`] (their JSON form on the seat channel) and the channel's name. Plain data
//! with no I/O, so the mirror, the subscriber and the seat feed above them share one
//! definition without importing one another.

use registrar_actors::{Counts, SectionId, Version};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A section's counts and the version they were committed (or read) at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatCounts {
    /// Orders these counts among the section's others (see [`Version`]).
    pub version: Version,
    /// The counts.
    pub counts: Counts,
}

/// The seat channel of the nodes sharing the Redis key prefix `prefix`.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:seats")
}

/// A section's counts as published after a commit (JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatMessage {
    /// The section.
    pub section: Uuid,
    /// The ownership epoch the counts were committed under.
    pub epoch: i64,
    /// The commit's stamp within the epoch (see [`Version`]).
    pub seq: u64,
    /// Seats taken.
    pub seats_taken: u32,
    /// Seats offered.
    pub capacity: u32,
    /// Students waiting.
    pub waitlist_length: u32,
    /// Waitlist places offered.
    pub waitlist_capacity: u32,
    /// Free seats only students matching a reserved pool may take.
    #[serde(default)]
    pub reserved_seats_left: u32,
}

impl SeatMessage {
    /// The message for `section`'s `seats`.
    pub fn new(section: SectionId, seats: SeatCounts) -> Self {
        let c = seats.counts;
        Self {
            section: section.0,
            epoch: seats.version.epoch,
            seq: seats.version.seq,
            seats_taken: c.seats_taken,
            capacity: c.capacity,
            waitlist_length: c.waitlist_length,
            waitlist_capacity: c.waitlist_capacity,
            reserved_seats_left: c.reserved_seats_left,
        }
    }

    /// As sent on the channel.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a struct of numbers and a uuid serializes")
    }

    /// The section and its counts, from a message body; `None` if it is not one.
    pub fn decode(body: &[u8]) -> Option<(SectionId, SeatCounts)> {
        let m: SeatMessage = serde_json::from_slice(body).ok()?;
        let seats = SeatCounts {
            version: Version {
                epoch: m.epoch,
                seq: m.seq,
            },
            counts: Counts {
                seats_taken: m.seats_taken,
                capacity: m.capacity,
                waitlist_length: m.waitlist_length,
                waitlist_capacity: m.waitlist_capacity,
                reserved_seats_left: m.reserved_seats_left,
            },
        };
        Some((SectionId(m.section), seats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_the_section_its_counts_and_their_version() {
        let section = SectionId::new_v4();
        let seats = SeatCounts {
            version: Version {
                epoch: 7,
                seq: 1_800_000_000_000_123,
            },
            counts: Counts {
                seats_taken: 3,
                capacity: 40,
                waitlist_length: 2,
                waitlist_capacity: 10,
                reserved_seats_left: 1,
            },
        };
        let body = SeatMessage::new(section, seats).encode();
        assert_eq!(SeatMessage::decode(body.as_bytes()), Some((section, seats)));
        assert_eq!(SeatMessage::decode(b"{\"section\":1}"), None);
    }
}
