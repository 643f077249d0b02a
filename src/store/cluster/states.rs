//! The closed sets of states the cluster's rows hold (each in a `text` column whose CHECK
//! constraint lists the same names) and the notices of the cluster's channel, each with
//! one name for PostgreSQL, the API and the command line.

use super::super::text_enum::text_enum;
use uuid::Uuid;

/// What a notification on the cluster's channel ([`CHANNEL`](super::CHANNEL)) says; its payload is [`Notice::encode`]d here and
/// [`Notice::parse`]d here, nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The shard map or the membership changed (`map`).
    Map,
    /// A term's calendar changed: a registration window or the add/drop deadlines
    /// (`windows`).
    Windows,
    /// One student's rule inputs changed (`student:<uuid>`).
    Student(Uuid),
    /// Many students' rule inputs changed at once (`students`: time tickets assigned in
    /// bulk).
    AllStudents,
    /// One section's fixed facts changed: its links (`section:<uuid>`).
    Section(Uuid),
}

impl Notice {
    /// The payload sent for this notice.
    pub fn encode(&self) -> String {
        match self {
            Self::Map => "map".into(),
            Self::Windows => "windows".into(),
            Self::AllStudents => "students".into(),
            Self::Student(id) => format!("student:{id}"),
            Self::Section(id) => format!("section:{id}"),
        }
    }

    /// The notice a payload carries; `None` for one this version does not know.
    pub fn parse(payload: &str) -> Option<Self> {
        match payload {
            "map" => Some(Self::Map),
            "windows" => Some(Self::Windows),
            "students" => Some(Self::AllStudents),
            other => {
                if let Some(id) = other.strip_prefix("section:") {
                    return id.parse().ok().map(Self::Section);
                }
                other
                    .strip_prefix("student:")
                    .and_then(|id| id.parse().ok())
                    .map(Self::Student)
            }
        }
    }
}

text_enum! {
    /// A member's state: joining → active → draining → left; a member whose lease ran out
    /// is declared dead.
    NodeState {
        /// Registered, not serving yet.
        Joining = "joining",
        /// Serving and taking shards.
        Active = "active",
        /// Handing its shards to the active members.
        Draining = "draining",
        /// Out of the cluster (drained, or stopped).
        Left = "left",
        /// Its lease ran out.
        Dead = "dead",
    }
}

impl NodeState {
    /// Whether a member in this state takes part (if its lease is live too).
    pub fn takes_part(self) -> bool {
        matches!(self, Self::Joining | Self::Active | Self::Draining)
    }
}

text_enum! {
    /// A shard's state in the map.
    ShardState {
        /// Owned.
        Active = "active",
        /// Being handed off.
        Moving = "moving",
        /// Nobody owns it (it is being reassigned).
        Unowned = "unowned",
    }
}

text_enum! {
    /// Where a shard move stands.
    MoveState {
        /// Recorded, not started.
        Pending = "pending",
        /// Under way.
        Running = "running",
        /// The shard changed hands.
        Done = "done",
        /// Given up; nothing changed hands.
        Failed = "failed",
    }
}

impl MoveState {
    /// Whether the move has not ended yet.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

text_enum! {
    /// Why a shard moved.
    MoveReason {
        /// Evening the shards out over the active members.
        Rebalance = "rebalance",
        /// Emptying a draining member.
        Drain = "drain",
        /// An operator asked for this one shard.
        Operator = "operator",
    }
}

text_enum! {
    /// A node's Redis mirror, as its load report says.
    #[derive(Default)]
    MirrorHealth {
        /// Writing.
        Ok = "ok",
        /// Configured, its breaker open.
        Degraded = "degraded",
        /// Not configured.
        #[default]
        Off = "off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_parses_back_from_its_payload() {
        let student = Uuid::new_v4();
        for notice in [Notice::Map, Notice::Windows, Notice::Student(student)] {
            assert_eq!(Notice::parse(&notice.encode()), Some(notice));
        }
        assert_eq!(
            Notice::Student(student).encode(),
            format!("student:{student}")
        );
        assert_eq!(Notice::parse("student:not-a-uuid"), None);
        assert_eq!(Notice::parse("something-newer"), None);
    }

    #[test]
    fn states_have_one_name_for_the_rows_and_the_api() {
        for state in [
            NodeState::Joining,
            NodeState::Active,
            NodeState::Draining,
            NodeState::Left,
            NodeState::Dead,
        ] {
            assert_eq!(state.as_str().parse::<NodeState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for state in [
            MoveState::Pending,
            MoveState::Running,
            MoveState::Done,
            MoveState::Failed,
        ] {
            assert_eq!(state.as_str().parse::<MoveState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert!("paused".parse::<MoveState>().is_err());
        assert_eq!(MirrorHealth::default(), MirrorHealth::Off);
    }
}
