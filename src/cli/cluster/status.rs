//! `registrar cluster status`: every node of the cluster (state, lease age, shards owned,
//! load) and the shard moves in progress, from `GET /api/v1/cluster`, as two aligned tables.
//! The view is the server's own type (`cluster::view`), which `cluster drain` follows too.

use super::Session;
use crate::cluster::view::ClusterView;
use chrono::SecondsFormat;

/// `registrar cluster status`: log in, fetch the view, print it.
pub async fn status(url: &str) -> anyhow::Result<()> {
    let session = Session::open(url).await?;
    let view = session.cluster().await?;
    print!("{}", render(&view));
    Ok(())
}

/// The printed view: a summary line, the node table and the moves in progress.
pub fn render(view: &ClusterView) -> String {
    let owned: usize = view.nodes.iter().map(|n| n.shards_owned).sum();
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
                n.state.to_string(),
                lease_age(u64::try_from(n.lease_age_ms).unwrap_or(0)),
                n.shards_owned.to_string(),
                rate(n.load.decisions_per_s),
                n.load.in_flight.to_string(),
                n.load
                    .p99_ms
                    .map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}")),
                rate(n.load.overloaded_per_s),
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
                vec![
                    m.id.to_string(),
                    m.shard.to_string(),
                    m.from_node.clone(),
                    m.to_node.clone(),
                    m.state.to_string(),
                    m.started_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    m.held_requests.to_string(),
                ]
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

    /// A node's load as the server reports it.
    fn load(decisions: f64, in_flight: i32, p99: &str, overloaded: f64) -> String {
        format!(
            r#"{{"decisions_per_s": {decisions}, "in_flight": {in_flight}, "requests_per_s": 0.0,
               "p99_ms": {p99}, "overloaded_per_s": {overloaded}, "broker_connected": true,
               "redis": "off"}}"#
        )
    }

    /// `GET /api/v1/cluster` as the server answers it: three nodes, one move.
    fn sample() -> String {
        format!(
            r#"{{
      "shards": 1024, "coordinator": "node-1", "outbox_backlog": 0,
      "at": "2026-11-22T07:00:01Z",
      "nodes": [
        {{"id": "node-1", "address": "http://127.0.0.1:8081", "state": "active",
         "lease_age_ms": 412, "shards_owned": 512, "load": {}}},
        {{"id": "node-2", "address": "http://127.0.0.1:8082", "state": "draining",
         "lease_age_ms": 95000, "shards_owned": 500, "load": {}}},
        {{"id": "node-3", "address": "http://127.0.0.1:8083", "state": "joining",
         "lease_age_ms": 0, "shards_owned": 12, "load": {}}}
      ],
      "moves": [
        {{"id": 61, "shard": 17, "from": "node-2", "to": "node-3", "reason": "drain",
         "requested_by": "node-1", "state": "running", "error": null, "held_requests": 3,
         "started_at": "2026-11-22T07:00:00Z", "finished_at": null}}
      ]
    }}"#,
            load(1520.25, 7, "48.25", 2.0),
            load(0.0, 0, "null", 0.0),
            load(-0.0, 0, "null", 0.0),
        )
    }

    #[test]
    fn renders_nodes_and_moves_as_aligned_tables() {
        let view: ClusterView = serde_json::from_str(&sample()).expect("sample parses");
        let expected = "\
cluster: 3 nodes, 1024 shards, 1024 of them owned

NODE    STATE     LEASE AGE  SHARDS  DECISIONS/S  IN-FLIGHT  P99 MS  503/S  ADDRESS
node-1  active         0.4s     512       1520.2          7    48.2    2.0  http://127.0.0.1:8081
node-2  draining      1m35s     500          0.0          0       -    0.0  http://127.0.0.1:8082
node-3  joining        0.0s      12          0.0          0       -    0.0  http://127.0.0.1:8083

moves in progress: 1
MOVE  SHARD  FROM    TO      STATE    STARTED               HELD
61       17  node-2  node-3  running  2026-11-22T07:00:00Z     3
";
        assert_eq!(render(&view), expected);
    }

    #[test]
    fn no_moves_says_none_and_unowned_shards_show_in_the_summary() {
        let view: ClusterView = serde_json::from_str(&format!(
            r#"{{"shards": 64, "coordinator": null, "outbox_backlog": null,
                "at": "2026-11-22T07:00:01Z", "moves": [],
                "nodes": [{{"id": "a", "address": "http://x", "state": "active",
                "lease_age_ms": 0, "shards_owned": 60, "load": {}}}]}}"#,
            load(1.0, 0, "null", 0.0)
        ))
        .expect("parses without moves");
        let text = render(&view);
        assert!(text.starts_with("cluster: 1 nodes, 64 shards, 60 of them owned\n"));
        assert!(text.ends_with("\nmoves in progress: none\n"), "{text}");
    }

    #[test]
    fn a_view_parses_back_from_what_the_server_writes() {
        let view: ClusterView = serde_json::from_str(&sample()).unwrap();
        let again: ClusterView =
            serde_json::from_value(serde_json::to_value(&view).unwrap()).unwrap();
        assert_eq!(render(&again), render(&view));
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
