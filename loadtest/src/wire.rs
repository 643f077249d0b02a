//! What a request to registrar and its answer are, as every layer of the load test sees
//! them: a signed-in [`Student`], an [`Answer`] and its [`Verdict`], and the demo
//! students' credentials ([`demo_password`], [`token_subject`]).
//!
//! A leaf module: it imports nothing of this crate, so the recorders ([`crate::acks`],
//! [`crate::stats`]) and the sign-in phase ([`crate::prelogin`]) can share these types
//! with the API client ([`crate::api`]) that sits above them, without importing it.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Accepted,
    /// An expected refusal (documented 4xx code, 429).
    Refused,
    /// 5xx, timeout, broken connection, unexpected status or body.
    Failed,
}

/// The header naming the address of the student's home node.
pub const HOME_HEADER: &str = "x-registrar-home";

/// A logged-in demo student.
#[derive(Clone, Debug)]
pub struct Student {
    /// The account id (the token's subject).
    pub id: Uuid,
    /// Bearer token.
    pub token: String,
    /// The address of the student's home node, as the sign-in named it (`X-Registrar-Home`).
    pub home: Option<String>,
}

/// The answer to one request, already classified and tallied.
#[derive(Debug)]
pub struct Answer {
    /// How it ended.
    pub verdict: Verdict,
    /// HTTP status (0 when no response arrived).
    pub status: u16,
    /// The problem+json `code`, if any.
    pub code: Option<String>,
    /// The JSON body (Null when none or not JSON).
    pub body: Value,
    /// The `Idempotency-Key` the request carried (the careful client's decisions).
    pub key: Option<String>,
    /// The student's home node as the answer named it (`X-Registrar-Home`).
    pub home: Option<String>,
}

/// The password of the seeded demo students.
pub fn demo_password() -> String {
    std::env::var("REGISTRAR_DEMO_PASSWORD").unwrap_or_else(|_| "demo".to_string())
}

/// The subject (`sub`) of a JWT, without checking the signature (the server does that).
pub fn token_subject(token: &str) -> Option<Uuid> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        sub: Uuid,
    }
    serde_json::from_slice::<Claims>(&bytes).ok().map(|c| c.sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_subject_reads_the_payload() {
        let id = Uuid::new_v4();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"{id}","role":"student","exp":1}}"#));
        assert_eq!(token_subject(&format!("h.{payload}.s")), Some(id));
        assert_eq!(token_subject("garbage"), None);
    }
}
