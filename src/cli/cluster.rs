//! `registrar cluster ...`: the operator's command line over the cluster API of a running
//! node. `status` prints the nodes and the moves in progress ([`status`]); `move`, `drain`
//! and `rebalance` ask for shard moves and follow them to the end ([`moves`]). This module
//! holds what they share: the node's URL, the operator's credentials, the login and one
//! [`Session`] through which every request goes, its errors reported by their problem+json
//! `code` and `detail`. Plain HTTP only: the nodes serve no TLS themselves; from outside a
//! Kubernetes cluster, run it in a pod or through a port-forward.

pub mod moves;
mod progress;
pub mod status;

pub use crate::cluster::view::ClusterView;
pub use status::status;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Where the command looks when neither `--url` nor `REGISTRAR_URL` says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// The login name (default `operator`).
pub const USERNAME_VAR: &str = "REGISTRAR_OPERATOR_USERNAME";
/// The password, when not given, is asked on the terminal without echo.
pub const PASSWORD_VAR: &str = "REGISTRAR_OPERATOR_PASSWORD";

/// An operator logged in at one node: every request of the cluster commands goes through
/// it, so the token, the time limits and the error reports are the same for all.
pub struct Session {
    /// Plain HTTP, short time limits: each call is one small read or write.
    client: reqwest::Client,
    /// The node's URL without a trailing slash.
    base: String,
    /// The operator's bearer token.
    token: String,
}

impl Session {
    /// Check `url`, take the credentials (environment or terminal) and log in.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        base_url(url)?;
        Self::login(url, credentials()?).await
    }

    /// Log in at `url` with `credentials` already taken.
    pub async fn login(url: &str, credentials: Credentials) -> anyhow::Result<Self> {
        let base = base_url(url)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        let token = login(&client, &base, &credentials).await?;
        Ok(Self {
            client,
            base,
            token,
        })
    }

    /// `GET /api/v1/cluster`.
    pub async fn cluster(&self) -> anyhow::Result<ClusterView> {
        self.get("/api/v1/cluster").await
    }

    /// `GET path` (from `/api/v1/...`), its JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body, its JSON answer.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// One request; any 2xx answer is read as `T`, anything else is an error naming the
    /// request and the server's problem.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            bail!(
                "{method} {url}: {}{}",
                problem(status, &text),
                hint(status, &text)
            );
        }
        serde_json::from_str(&text)
            .with_context(|| format!("unexpected answer from {method} {url}"))
    }
}

/// The operator's credentials.
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// `url` without a trailing slash, refused unless it is plain `http://`.
fn base_url(url: &str) -> anyhow::Result<String> {
    let base = url.trim().trim_end_matches('/');
    if base.starts_with("https://") {
        bail!(
            "{base}: this client speaks plain HTTP only (the nodes serve no TLS); \
             use a node's own address or a port-forward"
        );
    }
    if !base.starts_with("http://") || base.len() == "http://".len() {
        bail!("{url:?} is not an http:// URL of a registrar node (e.g. {DEFAULT_URL})");
    }
    Ok(base.to_string())
}

/// From the environment, else asked on the terminal. The username defaults to `operator`
/// (the demo account) and is asked only along with the password.
pub fn credentials() -> anyhow::Result<Credentials> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (username, password) = match (from_env(USERNAME_VAR), from_env(PASSWORD_VAR)) {
        (username, Some(password)) => (username.unwrap_or_else(|| "operator".into()), password),
        (Some(username), None) => {
            let password = prompt(&format!("password for {username}: "), false)?;
            (username, password)
        }
        (None, None) => {
            let typed = prompt("operator username [operator]: ", true)?;
            let username = if typed.is_empty() {
                "operator".to_string()
            } else {
                typed
            };
            let password = prompt(&format!("password for {username}: "), false)?;
            (username, password)
        }
    };
    Ok(Credentials { username, password })
}

/// One line typed on the terminal; without echo when `echo` is false (through `stty`,
/// restored afterwards). Refuses when stdin is not a terminal.
fn prompt(question: &str, echo: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("no terminal to ask for credentials: set {USERNAME_VAR} and {PASSWORD_VAR}");
    }
    eprint!("{question}");
    std::io::stderr().flush()?;
    let hidden = !echo && stty("-echo");
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if hidden {
        stty("echo");
        eprintln!();
    }
    read.context("cannot read from the terminal")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Run `stty ARG` on the terminal; whether it worked.
fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

#[derive(Deserialize)]
struct LoginAnswer {
    access_token: String,
}

/// `POST /api/v1/auth/login`: the bearer token.
async fn login(
    client: &reqwest::Client,
    base: &str,
    credentials: &Credentials,
) -> anyhow::Result<String> {
    let url = format!("{base}/api/v1/auth/login");
    let response = client
        .post(&url)
        .json(&serde_json::json!({
            "username": credentials.username,
            "password": credentials.password,
        }))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "login as `{}` at {base} failed: {}",
            credentials.username,
            problem(status.as_u16(), &body)
        );
    }
    let answer: LoginAnswer = serde_json::from_str(&body)
        .with_context(|| format!("unexpected login answer from {url}"))?;
    Ok(answer.access_token)
}

/// `STATUS code: detail` from a problem+json body, or the status and the start of the body.
fn problem(status: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (field("code"), field("detail")) {
        (Some(code), Some(detail)) => format!("{status} {code}: {detail}"),
        (Some(code), None) => format!("{status} {code}"),
        _ => {
            let text: String = body.trim().chars().take(200).collect();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        }
    }
}

/// What an error most likely means, when the problem alone does not say.
fn hint(status: u16, body: &str) -> &'static str {
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string));
    match (status, code.as_deref()) {
        (403, _) => " (set REGISTRAR_OPERATOR_USERNAME to an operator account)",
        // The server's answer to a route it does not have.
        (404, Some("not_found") | None) | (405, _) => {
            " (a server without this part of the cluster API? it may be older than this client)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_reported_by_code_and_detail() {
        let body = r#"{"type":"about:blank","title":"Unauthorized","status":401,
            "code":"unauthenticated","detail":"wrong username or password"}"#;
        assert_eq!(
            problem(401, body),
            "401 unauthenticated: wrong username or password"
        );
        assert_eq!(problem(502, ""), "HTTP 502");
        assert_eq!(problem(500, "oops"), "HTTP 500: oops");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert_eq!(
            base_url("http://127.0.0.1:8081/").unwrap(),
            "http://127.0.0.1:8081"
        );
        assert!(base_url("https://registrar.example").is_err());
        assert!(base_url("127.0.0.1:8080").is_err());
        assert!(base_url("http://").is_err());
    }

    #[test]
    fn a_missing_route_is_told_apart_from_a_missing_shard() {
        let route = r#"{"status":404,"code":"not_found","detail":"no such route"}"#;
        assert!(hint(404, route).contains("without this part of the cluster API"));
        assert!(hint(405, "").contains("without this part of the cluster API"));
        let shard = r#"{"status":404,"code":"shard_not_found","detail":"shards are 0 to 1023"}"#;
        assert_eq!(hint(404, shard), "");
        assert!(hint(403, "").contains("an operator account"));
        assert_eq!(hint(409, r#"{"code":"shard_moving"}"#), "");
    }
}
