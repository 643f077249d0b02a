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
