//! `registrar cluster status`: every node of the cluster (state, lease age, shards owned,
//! load) and the shard moves in progress, from `GET /api/v1/cluster`, as two aligned tables.
//! The view's types are also what `cluster drain` follows.

use super::Session;
use serde::Deserialize;
use serde_json::Value;

/// `registrar cluster status`: log in, fetch the view, print it.
pub async fn status(url: &str) -> anyhow::Result<()> {
    let session = Session::open(url).await?;
    let view = session.cluster().await?;
    print!("{}", render(&view));
    Ok(())
}

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
    /// p99 of the node's registration requests over its last heartbeat (none answered: null).
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// 503 `overloaded` answers per second over its last heartbeat.
    #[serde(default)]
    pub overloaded_per_s: Option<f64>,
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
                    .map_or_else(|| "-".to_string(), |l| rate(l.decisions_per_s)),
                n.load
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |l| l.in_flight.to_string()),
                n.load
                    .as_ref()
                    .and_then(|l| l.p99_ms)
                    .map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}")),
                n.load
                    .as_ref()
                    .and_then(|l| l.overloaded_per_s)
                    .map_or_else(|| "-".to_string(), rate),
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
            "P99 MS",
            "503/S",
            "ADDRESS",
        ],
        &[false, false, true, true, true, true, true, true, false],
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
pub(super) fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A rate with one decimal; `0.0`, not `-0.0`, for the rounding noise of an idle node.
fn rate(per_s: f64) -> String {
    format!("{:.1}", per_s.max(0.0) + 0.0)
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
         "load": {"decisions_per_s": 1520.25, "in_flight": 7, "p99_ms": 48.25, "overloaded_per_s": 2.0}},
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

NODE    STATE     LEASE AGE  SHARDS  DECISIONS/S  IN-FLIGHT  P99 MS  503/S  ADDRESS
node-1  active         0.4s     512       1520.2          7    48.2    2.0  http://127.0.0.1:8081
node-2  draining      1m35s     500          0.0          0       -      -  http://127.0.0.1:8082
node-3  joining           -      12            -          -       -      -  http://127.0.0.1:8083

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
    fn idle_rates_read_as_zero_never_minus_zero() {
        assert_eq!(rate(-0.0), "0.0");
        assert_eq!(rate(-0.000_001), "0.0");
        assert_eq!(rate(1520.25), "1520.2");
    }

    #[test]
    fn lease_ages_read_as_seconds_then_minutes() {
        assert_eq!(lease_age(0), "0.0s");
        assert_eq!(lease_age(4_950), "5.0s");
        assert_eq!(lease_age(60_000), "1m00s");
        assert_eq!(lease_age(3_725_000), "62m05s");
    }
}
