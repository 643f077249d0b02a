//! Idempotency of registration requests, in one place: the `Idempotency-Key` a client
//! sends, the request id derived from it (a retried request reaches the section actor
//! under the same id and is answered again, never decided twice), the ids of the parts of
//! a compound request (a swap's add, drop and undo), the fingerprint that binds a key to
//! one request, and the stored first answers, kept for their [`retention`].
//!
//! The first answer survives a crash between the decision's commit and storing the
//! answer: every decision writes an audit row under its request id in its own commit, and
//! [`prior`] finds those rows when no answer is stored, so the answer is rebuilt instead
//! of deciding again (a drop retried after a restart would otherwise be `not_enrolled`).

use crate::store::{self, DbResult};
use registrar_actors::{RequestId, StudentId};
use sqlx::PgPool;
use uuid::Uuid;

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Namespace of the UUIDv5 request ids derived here. Never change it: a retry sent across
/// an upgrade must map to the same request id.
const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_9a3e_2d41_4b7c_9e15_7a1d_03c2_6b88);

/// A client's `Idempotency-Key`: 1-255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// A key that is empty, too long or not visible ASCII.
#[derive(Debug, thiserror::Error)]
#[error("Idempotency-Key must be 1-255 visible ASCII characters")]
pub struct InvalidKey;

impl IdempotencyKey {
    /// Validate a raw header value.
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidKey> {
        let ok =
            !raw.is_empty() && raw.len() <= MAX_KEY_LEN && raw.iter().all(u8::is_ascii_graphic);
        if !ok {
            return Err(InvalidKey);
        }
        // All visible ASCII, so valid UTF-8.
        String::from_utf8(raw.to_vec())
            .map(Self)
            .map_err(|_| InvalidKey)
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The request id of `student`'s request with this key: always the same for the same
    /// student and key.
    pub fn request_id(&self, student: StudentId) -> RequestId {
        derive(student.0, &self.0)
    }
}

/// The id of one part (`"add"`, `"drop"`, `"undo"`) of a compound request: stable for a
/// retried request, distinct between parts.
pub fn part_of(request: RequestId, part: &str) -> RequestId {
    derive(request.0, part)
}

fn derive(base: Uuid, name: &str) -> RequestId {
    let mut bytes = Vec::with_capacity(16 + name.len());
    bytes.extend_from_slice(base.as_bytes());
    bytes.extend_from_slice(name.as_bytes());
    RequestId(Uuid::new_v5(&NAMESPACE, &bytes))
}

/// The first answer given to a keyed request.
pub type Answer = store::idempotency::StoredAnswer;

/// A decision on record for a request id (see [`prior`]).
pub type Decided = store::idempotency::Decided;

/// How long a key's first answer is replayed, from `REGISTRAR_IDEMPOTENCY_RETENTION_HOURS`
/// (the pruner deletes it after that; 0 keeps it forever): a retry within it gets the
/// first answer; after it the key may be used for a new request.
pub fn retention(hours: u64) -> std::time::Duration {
    const FOREVER_HOURS: u64 = 100 * 365 * 24;
    let hours = if hours == 0 { FOREVER_HOURS } else { hours };
    std::time::Duration::from_secs(hours.min(FOREVER_HOURS) * 3600)
}

/// What a request is: its operation and arguments, hashed. A key is bound to the
/// fingerprint of the request it first answered.
pub fn fingerprint(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&NAMESPACE, parts.join("\u{1f}").as_bytes())
}

/// What is known of a keyed request before deciding it.
#[derive(Debug)]
pub enum Prior {
    /// The stored first answer: replay it.
    Answered(Answer),
    /// The key first answered a different request.
    Reused,
    /// No stored answer, but decisions under the request's ids are on record (written in
    /// their commit; the answer was lost): rebuild the first answer from them.
    Decided(Vec<Decided>),
    /// Nothing on record: decide.
    Fresh,
}

/// Why a key cannot be used for this request.
#[derive(Debug, thiserror::Error)]
#[error("this Idempotency-Key was first used for a different request")]
pub struct KeyReused;

/// What is on record for `student`'s `key` used for the request with `fingerprint`, whose
/// decisions are recorded under `requests` (the request id and those of its parts).
pub async fn prior(
    pool: &PgPool,
    student: Uuid,
    key: &IdempotencyKey,
    fingerprint: Uuid,
    requests: &[RequestId],
    retention: std::time::Duration,
) -> DbResult<Prior> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.0).collect();
    let found =
        store::idempotency::prior(pool, student, key.as_str(), &ids, retention.as_secs_f64())
            .await?;
    Ok(match found.answer {
        Some((_, Some(stored))) if stored != fingerprint => Prior::Reused,
        Some((answer, _)) => Prior::Answered(answer),
        None if !found.decided.is_empty() => Prior::Decided(found.decided),
        None => Prior::Fresh,
    })
}

/// Store `answer` as the first answer for `key`; if another request with the same key got
/// there first, its answer wins and is returned (or [`KeyReused`] if it was a different
/// request).
pub async fn remember(
    pool: &PgPool,
    student: Uuid,
    key: &IdempotencyKey,
    fingerprint: Uuid,
    answer: Answer,
    retention: std::time::Duration,
) -> DbResult<Result<Answer, KeyReused>> {
    let (stored, stored_fingerprint) = store::idempotency::store_answer(
        pool,
        student,
        key.as_str(),
        fingerprint,
        answer,
        retention.as_secs_f64(),
    )
    .await?;
    Ok(match stored_fingerprint {
        Some(f) if f != fingerprint => Err(KeyReused),
        _ => Ok(stored),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::parse(b"abc-123").is_ok());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"a b").is_err());
        assert!(IdempotencyKey::parse("é".as_bytes()).is_err());
        assert!(IdempotencyKey::parse(&[b'k'; MAX_KEY_LEN]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; MAX_KEY_LEN + 1]).is_err());
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let a = fingerprint(&["enroll", "s1"]);
        assert_eq!(a, fingerprint(&["enroll", "s1"]));
        assert_ne!(a, fingerprint(&["enroll", "s2"]));
        assert_ne!(a, fingerprint(&["drop", "s1"]));
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    #[test]
    fn derived_ids_are_pinned() {
        // Pinned: a change would make retries sent across an upgrade decide twice.
        let student = StudentId(Uuid::nil());
        let key = IdempotencyKey::parse(b"k1").unwrap();
        let id = key.request_id(student);
        assert_eq!(id, key.request_id(student));
        assert_ne!(
            id,
            IdempotencyKey::parse(b"k2").unwrap().request_id(student)
        );
        assert_eq!(id.0.get_version_num(), 5);
        assert_ne!(part_of(id, "add"), part_of(id, "drop"));
        assert_eq!(id.0.to_string(), PINNED_K1);
    }

    const PINNED_K1: &str = "83fe236f-614e-56ce-944c-4603c982e214";
}
