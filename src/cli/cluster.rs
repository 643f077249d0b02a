//! `registrar cluster status`: the operator's view of a running cluster from the command
//! line. It logs in as an operator (or admin) through `POST /api/v1/auth/login`, reads
//! `GET /api/v1/cluster` from any node and prints one row per node (state, lease age, shards
//! owned, load) and the shard moves in progress. Plain HTTP only: the nodes serve no TLS
//! themselves; from outside a Kubernetes cluster, run it in a pod or through a port-forward.

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Where the command looks when neither `--url` nor `REGISTRAR_URL` says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// The login name (default `operator`).
pub const USERNAME_VAR: &str = "REGISTRAR_OPERATOR_USERNAME";
/// The password, when not given, is asked on the terminal without echo.
pub const PASSWORD_VAR: &str = "REGISTRAR_OPERATOR_PASSWORD";

/// `GET /api/v1/cluster`: the shard count, every node and the moves in progress.
#[derive(Debug, Deserialize)]
pub struct ClusterView {
    /// Shards of the cluster (fixed at creation).
    pub shards: u32,
    /// Every member the cluster knows, whatever its state.
    pub nodes: Vec<NodeView>,
    /// Shard moves not finished yet.
    #[serde(default)]
    pub moves: Vec<MoveView>,
}

/// One member of the cluster.
#[derive(Debug, Deserialize)]
pub struct NodeView {
    /// Node id (`node-1`, `registrar-0`).
    pub id: String,
    /// The URL other nodes reach it at.
    #[serde(default)]
    pub address: String,
    /// `joining`, `active`, `draining`, `left` or `dead`.
    pub state: String,
    /// Time since its last lease renewal; a live node stays under the lease time.
    #[serde(default)]
    pub lease_age_ms: Option<u64>,
    /// Shards it owns now.
    #[serde(default)]
    pub shards_owned: u32,
    /// Its current load.
    #[serde(default)]
    pub load: Option<LoadView>,
}

/// A node's load figures.
#[derive(Debug, Deserialize)]
pub struct LoadView {
    /// Seat decisions per second, recently.
    #[serde(default)]
    pub decisions_per_s: f64,
    /// Commands being decided now.
    #[serde(default)]
    pub in_flight: u64,
}

/// A shard move in progress. Fields the server leaves out print as `-`.
#[derive(Debug, Deserialize)]
pub struct MoveView {
    /// Move id.
    #[serde(default)]
    pub id: Value,
    /// The shard being handed off.
    #[serde(default)]
    pub shard: Value,
    /// Owner before.
    #[serde(default)]
    pub from: Value,
    /// Owner after.
    #[serde(default)]
    pub to: Value,
    /// `pending` or `running`.
    #[serde(default)]
    pub state: Value,
    /// When the handoff began.
    #[serde(default)]
    pub started_at: Value,
    /// Requests held while the shard moves.
    #[serde(default)]
    pub held_requests: Value,
}

/// The operator's credentials.
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// `registrar cluster status`: log in, fetch the view, print it.
pub async fn status(url: &str) -> anyhow::Result<()> {
    let base = base_url(url)?;
    let credentials = credentials()?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;
    let token = login(&client, &base, &credentials).await?;
    let view = fetch(&client, &base, &token).await?;
    print!("{}", render(&view));
    Ok(())
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
fn credentials() -> anyhow::Result<Credentials> {
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

/// `GET /api/v1/cluster` with the operator's token.
async fn fetch(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<ClusterView> {
    let url = format!("{base}/api/v1/cluster");
    let response = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    match status.as_u16() {
        200 => {
            serde_json::from_str(&body).with_context(|| format!("unexpected answer from GET {url}"))
        }
        403 => bail!(
            "GET {url}: {} (the cluster view needs an operator or admin account)",
            problem(403, &body)
        ),
        404 => bail!(
            "GET {url}: {} (a server without the cluster API?)",
            problem(404, &body)
        ),
        code => bail!("GET {url}: {}", problem(code, &body)),
    }
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

/// The printed view: a summary line, the node table and the moves in progress.
pub fn render(view: &ClusterView) -> String {
    let owned: u64 = view.nodes.iter().map(|n| u64::from(n.shards_owned)).sum();
    let mut out = format!(
        "cluster: {} nodes, {} shards, {} of them owned\n\n",
        view.nodes.len(),
        view.shards,
        owned
    );
    let rows: Vec<Vec<String>> = view
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.clone(),
                n.state.clone(),
                n.lease_age_ms.map_or_else(|| "-".to_string(), lease_age),
                n.shards_owned.to_string(),
                n.load
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |l| format!("{:.1}", l.decisions_per_s)),
                n.load
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |l| l.in_flight.to_string()),
                n.address.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "NODE",
            "STATE",
            "LEASE AGE",
            "SHARDS",
            "DECISIONS/S",
            "IN-FLIGHT",
            "ADDRESS",
        ],
        &[false, false, true, true, true, true, false],
        &rows,
    ));
    if view.moves.is_empty() {
        out.push_str("\nmoves in progress: none\n");
    } else {
        out.push_str(&format!("\nmoves in progress: {}\n", view.moves.len()));
        let rows: Vec<Vec<String>> = view
            .moves
            .iter()
            .map(|m| {
                [
                    &m.id,
                    &m.shard,
                    &m.from,
                    &m.to,
                    &m.state,
                    &m.started_at,
                    &m.held_requests,
                ]
                .into_iter()
                .map(plain)
                .collect()
            })
            .collect();
        out.push_str(&table(
            &["MOVE", "SHARD", "FROM", "TO", "STATE", "STARTED", "HELD"],
            &[false, true, false, false, false, false, true],
            &rows,
        ));
    }
    out
}

/// A JSON value as a cell: strings without quotes, null as `-`.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `0.4s`, `12.0s`, `3m05s`.
fn lease_age(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let secs = ms / 1000;
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Columns as wide as their widest cell, two spaces apart; `right[i]` aligns column i right.
fn table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "shards": 1024,
      "nodes": [
        {"id": "node-1", "address": "http://127.0.0.1:8081", "state": "active",
         "lease_age_ms": 412, "shards_owned": 512,
         "load": {"decisions_per_s": 1520.25, "in_flight": 7}},
        {"id": "node-2", "address": "http://127.0.0.1:8082", "state": "draining",
         "lease_age_ms": 95000, "shards_owned": 500,
         "load": {"decisions_per_s": 0.0, "in_flight": 0}},
        {"id": "node-3", "address": "http://127.0.0.1:8083", "state": "joining",
         "lease_age_ms": null, "shards_owned": 12}
      ],
      "moves": [
        {"id": "6f1c", "shard": 17, "from": "node-2", "to": "node-3", "state": "running",
         "started_at": "2026-11-22T07:00:00Z", "finished_at": null, "held_requests": 3}
      ]
    }"#;

    #[test]
    fn renders_nodes_and_moves_as_aligned_tables() {
        let view: ClusterView = serde_json::from_str(SAMPLE).expect("sample parses");
        let expected = "\
cluster: 3 nodes, 1024 shards, 1024 of them owned

NODE    STATE     LEASE AGE  SHARDS  DECISIONS/S  IN-FLIGHT  ADDRESS
node-1  active         0.4s     512       1520.2          7  http://127.0.0.1:8081
node-2  draining      1m35s     500          0.0          0  http://127.0.0.1:8082
node-3  joining           -      12            -          -  http://127.0.0.1:8083

moves in progress: 1
MOVE  SHARD  FROM    TO      STATE    STARTED               HELD
6f1c     17  node-2  node-3  running  2026-11-22T07:00:00Z     3
";
        assert_eq!(render(&view), expected);
    }

    #[test]
    fn no_moves_says_none_and_unowned_shards_show_in_the_summary() {
        let view: ClusterView = serde_json::from_str(
            r#"{"shards": 64, "nodes": [{"id": "a", "address": "http://x", "state": "active",
                "lease_age_ms": 0, "shards_owned": 60,
                "load": {"decisions_per_s": 1, "in_flight": 0}}]}"#,
        )
        .expect("parses without moves");
        let text = render(&view);
        assert!(text.starts_with("cluster: 1 nodes, 64 shards, 60 of them owned\n"));
        assert!(text.ends_with("\nmoves in progress: none\n"), "{text}");
    }

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
    fn lease_ages_read_as_seconds_then_minutes() {
        assert_eq!(lease_age(0), "0.0s");
        assert_eq!(lease_age(4_950), "5.0s");
        assert_eq!(lease_age(60_000), "1m00s");
        assert_eq!(lease_age(3_725_000), "62m05s");
    }
}
