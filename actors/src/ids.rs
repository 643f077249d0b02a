//! Identifier newtypes, so a section id can never be passed where a student id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A course section (one actor each).
    SectionId
);
id_type!(
    /// A student (or staff account: admins and operators share the table).
    StudentId
);
id_type!(
    /// One client request; a retried request keeps its id, so the actor can answer it again
    /// without deciding twice.
    RequestId
);
id_type!(
    /// One decision over several sections (a linked set, a cart's set): its held seats
    /// are confirmed or released together, by the one row in PostgreSQL that records it.
    DecisionId
);

/// Namespace of the decision ids derived from a request (see [`DecisionId::of_replace`]).
const DECISION_NAMESPACE: Uuid = Uuid::from_u128(0x3d6c_9a2e_51f4_4b07_a8e3_6c15_d9b0_72f4);

impl DecisionId {
    /// The decision that takes a seat for `request` (a [`Replace`](crate::Command::Replace))
    /// and leaves the section it names: derived, so every copy of the request and every
    /// activation of the section name the same decision.
    pub fn of_replace(request: RequestId) -> Self {
        Self(Uuid::new_v5(&DECISION_NAMESPACE, request.0.as_bytes()))
    }
}

id_type!(
    /// One pool of seats a section reserves for students with an attribute.
    PoolId
);

id_type!(
    /// One permit (override) a registrar or instructor granted a student.
    PermitId
);
