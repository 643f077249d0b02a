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

impl RequestId {
    /// The request id for a client's `Idempotency-Key`: the same student and key always
    /// give the same id, so a retry after a lost answer is recognised by the actor.
    pub fn from_idempotency_key(student: StudentId, key: &str) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_9a3e_2d41_4b7c_9e15_7a1d_03c2_6b88);
        let mut name = Vec::with_capacity(16 + key.len());
        name.extend_from_slice(student.0.as_bytes());
        name.extend_from_slice(key.as_bytes());
        Self(Uuid::new_v5(&NAMESPACE, &name))
    }
}
