//! The client of the internal hop between nodes: it carries what one node asks another
//! (call a section actor, hand shards over, serve a forwarded client request; the
//! messages are in `super::hop`, re-exported here). Section
//! calls and forwarded requests go over the binary wire (`super::wire`) to a peer that
//! speaks it; handoffs, and every call to a peer that does not (or with the wire turned
//! off), go over pooled cleartext HTTP/2 connections (prior knowledge) to the peer's
//! advertised URL.
//!
//! Peers prove they belong to the cluster with a key derived from the token secret every
//! node shares (HMAC-SHA256 of a fixed label), sent as `x-registrar-internal`; the secret
//! itself never crosses the wire.

use super::wire::{WireClient, WireError};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use registrar_actors::SectionId;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// Set on a client request one node forwards to another: the sender's node id.
pub const FORWARDED_BY: &str = "x-registrar-forwarded-by";
/// How many nodes a forwarded client request has passed through.
pub const HOPS: &str = "x-registrar-hops";

pub use super::hop::{
    HandoffAnswer, HandoffRequest, HomeClaim, INTERNAL_KEY, PeerError, SectionAnswer, SectionCall,
};

impl From<reqwest::Error> for PeerError {
    fn from(err: reqwest::Error) -> Self {
        if err.is_decode() {
            PeerError::Protocol(err.to_string())
        } else if err.is_connect() {
            PeerError::Unreached(err.to_string())
        } else {
            PeerError::Transport(err.to_string())
        }
    }
}

/// A client request to serve on another node.
pub struct Forward {
    /// Method.
    pub method: reqwest::Method,
    /// Path and query.
    pub path: String,
    /// The headers to pass on.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// The other node's answer to a [`Forward`].
pub struct Forwarded {
    /// Status.
    pub status: reqwest::StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// The internal client (see module docs).
#[derive(Clone)]
pub struct Peers {
    client: reqwest::Client,
    key: String,
    /// The binary transport, unless turned off.
    wire: Option<Arc<WireClient>>,
}

/// The internal key of a cluster whose token secret is `secret`.
pub fn internal_key(secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"registrar internal hop v1");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Peers {
    /// A client authenticating with `key` (see [`internal_key`]), over the wire when `wire`.
    pub fn new(key: String, wire: bool) -> Self {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(Duration::from_secs(1))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .http2_keep_alive_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a plain HTTP/2 client always builds");
        let wire = wire.then(|| Arc::new(WireClient::new(key.clone())));
        Self { client, key, wire }
    }

    /// The binary transport, if on.
    pub fn wire(&self) -> Option<&WireClient> {
        self.wire.as_deref()
    }

    /// Whether `presented` is this cluster's internal key (constant time).
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let key = self.key.as_bytes();
        presented.len() == key.len()
            && presented
                .iter()
                .zip(key)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Ask the owner at `base` to decide `call` on `section`, waiting at most `timeout`.
    pub async fn call_section(
        &self,
        base: &str,
        section: SectionId,
        call: &SectionCall,
        timeout: Duration,
    ) -> Result<SectionAnswer, PeerError> {
        if let Some(wire) = &self.wire {
            match wire.call_section(base, section, call, timeout).await {
                Err(WireError::Unsupported) => {}
                Err(WireError::Peer(e)) => return Err(e),
                Ok(answer) => return Ok(answer),
            }
        }
        let url = format!("{base}/internal/v1/sections/{section}/call");
        let answer = self
            .client
            .post(url)
            .header(INTERNAL_KEY, &self.key)
            .json(call)
            .timeout(timeout)
            .send()
            .await?;
        self.json(answer).await
    }

    /// Ask the owner at `base` to hand shards over, waiting at most `timeout`.
    pub async fn handoff(
        &self,
        base: &str,
        request: &HandoffRequest,
        timeout: Duration,
    ) -> Result<HandoffAnswer, PeerError> {
        let answer = self
            .client
            .post(format!("{base}/internal/v1/handoff"))
            .header(INTERNAL_KEY, &self.key)
            .json(request)
            .timeout(timeout)
            .send()
            .await?;
        self.json(answer).await
    }

    /// Serve `request` on the node at `base`, as sent by `from`.
    pub async fn forward(
        &self,
        base: &str,
        from: &str,
        request: Forward,
        timeout: Duration,
    ) -> Result<Forwarded, PeerError> {
        let answer = self
            .client
            .request(request.method, format!("{base}{}", request.path))
            .headers(request.headers)
            .header(INTERNAL_KEY, &self.key)
            .header(FORWARDED_BY, from)
            .body(request.body)
            .timeout(timeout)
            .send()
            .await?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.bytes().await?;
        Ok(Forwarded {
            status,
            headers,
            body,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        answer: reqwest::Response,
    ) -> Result<T, PeerError> {
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            return Err(PeerError::Protocol(format!(
                "{status}: {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        Ok(answer.json().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_key_is_derived_and_checked() {
        let key = internal_key(b"0123456789abcdef0123456789abcdef");
        assert_eq!(key.len(), 64);
        assert_ne!(key, internal_key(b"another secret of thirty-two byt"));
        let peers = Peers::new(key.clone(), true);
        assert!(peers.accepts(key.as_bytes()));
        assert!(!peers.accepts(b"nope"));
        assert!(!peers.accepts(&key.as_bytes()[1..]));
    }
}
