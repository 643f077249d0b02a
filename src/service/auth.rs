//! Passwords (argon2id) and access tokens (HS256 JWTs carrying subject and role, issued
//! by [`ISSUER`] for [`AUDIENCE`]), and the rules a token secret must meet.

use crate::resources::Role;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// The `iss` of every token this server issues, and the only one it accepts.
pub const ISSUER: &str = "registrar";
/// The `aud` of every token this server issues, and the only one it accepts.
pub const AUDIENCE: &str = "registrar-api";

/// Shortest accepted token secret, in bytes (HS256 wants a key of at least its 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Secrets this repository ships as examples or defaults (deploy files, scripts, tests):
/// anyone can read them, so no node accepts one outside development mode.
pub const SHIPPED_SECRETS: &[&str] = &[
    "change-me-to-32-or-more-random-bytes-0123456789abcdef",
    "compose-dev-jwt-secret-do-not-use-in-production",
    "registrar-local-dev-jwt-secret-do-not-use-in-production",
    "smoke-load-secret",
    "flash-bench-secret",
    "test-secret",
];

/// Why a token secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    /// None was given.
    #[error("REGISTRAR_JWT_SECRET is not set")]
    Missing,
    /// Fewer than [`MIN_SECRET_BYTES`] bytes.
    #[error("REGISTRAR_JWT_SECRET is {0} bytes long; it needs at least {MIN_SECRET_BYTES}")]
    Short(usize),
    /// One of [`SHIPPED_SECRETS`].
    #[error("REGISTRAR_JWT_SECRET is an example value shipped with registrar")]
    Shipped,
}

/// Check a token secret: at least [`MIN_SECRET_BYTES`] bytes, and none of the shipped ones.
pub fn check_secret(secret: &str) -> Result<(), WeakSecret> {
    if secret.is_empty() {
        Err(WeakSecret::Missing)
    } else if SHIPPED_SECRETS.contains(&secret) {
        Err(WeakSecret::Shipped)
    } else if secret.len() < MIN_SECRET_BYTES {
        Err(WeakSecret::Short(secret.len()))
    } else {
        Ok(())
    }
}

/// A random secret for one process (development mode only): 32 random bytes, hex.
pub fn generated_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; MIN_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The account id.
    pub sub: Uuid,
    /// The account role.
    pub role: Role,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Issuer: [`ISSUER`].
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("invalid or expired token")]
pub struct TokenError;

/// The time tokens are issued and checked by, in seconds since the epoch.
pub type TokenClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How far past its expiry a token is still accepted (clocks of issuers differ a little).
const LEEWAY_SECS: u64 = 5;

/// Issues and verifies tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    /// Issue and expiry time: this machine's clock unless given the database's.
    clock: TokenClock,
}

impl TokenKeys {
    /// Keys from a shared secret.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        // Expiry is checked against `clock` below, not against this machine's clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
            clock: Arc::new(|| chrono::Utc::now().timestamp()),
        }
    }

    /// The same keys, issuing and checking expiry by `clock` (the database's, on a node).
    pub fn with_clock(self, clock: TokenClock) -> Self {
        Self { clock, ..self }
    }

    fn now(&self) -> u64 {
        (self.clock)().max(0) as u64
    }

    /// A token for `sub`; returns it with its lifetime in seconds.
    pub fn issue(&self, sub: Uuid, role: Role) -> (String, u64) {
        let iat = self.now();
        let claims = Claims {
            sub,
            role,
            exp: iat + self.ttl_secs,
            iat,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        let token = encode(&Header::default(), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail");
        (token, self.ttl_secs)
    }

    /// Verify signature, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| TokenError)?;
        if claims.exp.saturating_add(LEEWAY_SECS) < self.now() {
            return Err(TokenError);
        }
        Ok(claims)
    }
}

/// Hash a password with argon2id's default (strong) parameters: every account but the
/// seeded demo students has one of these, and so does [`dummy_hash`].
pub fn hash_password(password: &str) -> String {
    hash_with(Argon2::default(), password)
}

/// Hash the shared demo password with light parameters: the demo catalog has 100k students
/// sharing it and load tests log them all in, so each verification must be cheap. Only the
/// seeded demo accounts use it; accounts created through the API get [`hash_password`].
pub fn hash_demo_password(password: &str) -> String {
    let params = Params::new(1024, 1, 1, None).expect("valid argon2 parameters");
    hash_with(
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        password,
    )
}

fn hash_with(argon: Argon2<'_>, password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// The hash login verifies against when the username is unknown, so that an unknown user
/// costs exactly what a wrong password costs.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("no account has this password"));
    &DUMMY
}

/// Check `password` against a PHC hash (parameters come from the hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_differ() {
        let h = hash_demo_password("demo");
        assert!(verify_password("demo", &h));
        assert!(!verify_password("Demo", &h));
        assert!(!verify_password("demo", "not a hash"));
    }

    /// The argon2 parameters (algorithm, version, m/t/p) of a PHC hash.
    fn parameters(hash: &str) -> String {
        let parsed = PasswordHash::new(hash).expect("a PHC hash");
        format!(
            "{} v{:?} {}",
            parsed.algorithm, parsed.version, parsed.params
        )
    }

    #[test]
    fn an_unknown_user_is_checked_against_an_account_hash() {
        // Login answers an unknown user by verifying against the dummy hash: it must take
        // exactly the work of a real account's hash, or timing tells the two apart.
        assert_eq!(parameters(dummy_hash()), parameters(&hash_password("x")));
    }

    #[test]
    fn secrets_must_be_long_and_not_shipped() {
        assert_eq!(check_secret(""), Err(WeakSecret::Missing));
        assert_eq!(check_secret("abc"), Err(WeakSecret::Short(3)));
        for shipped in SHIPPED_SECRETS {
            assert!(check_secret(shipped).is_err(), "{shipped}");
        }
        assert_eq!(check_secret(&generated_secret()), Ok(()));
        assert_ne!(generated_secret(), generated_secret());
    }

    #[test]
    fn tokens_are_signed() {
        let keys = TokenKeys::new(b"k1", 60);
        let (t, _) = keys.issue(Uuid::nil(), Role::Admin);
        assert_eq!(keys.verify(&t).unwrap().role, Role::Admin);
        assert!(TokenKeys::new(b"k2", 60).verify(&t).is_err());
        assert!(keys.verify(&format!("{t}x")).is_err());
    }

    #[test]
    fn expiry_is_judged_by_the_keys_clock() {
        let at = |secs: i64| TokenKeys::new(b"k1", 60).with_clock(Arc::new(move || secs));
        let (t, _) = at(1_000_000).issue(Uuid::nil(), Role::Student);
        assert!(at(1_000_000 + 60).verify(&t).is_ok());
        assert!(at(1_000_000 + 60 + LEEWAY_SECS as i64).verify(&t).is_ok());
        assert!(at(1_000_000 + 61 + LEEWAY_SECS as i64).verify(&t).is_err());
        // Issued by a clock an hour behind this machine's, still good by that clock.
        let behind = chrono::Utc::now().timestamp() - 3_600;
        let (old, _) = at(behind).issue(Uuid::nil(), Role::Student);
        assert!(at(behind + 30).verify(&old).is_ok());
        assert!(TokenKeys::new(b"k1", 60).verify(&old).is_err());
    }
}
