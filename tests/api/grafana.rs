//! The Grafana dashboard (`deploy/grafana/registrar.json`) against a live `/metrics`:
//! every `registrar_*` series a panel or a template variable queries must be one the
//! server exports, so a renamed or misspelt metric fails here, not on an empty chart. The
//! same holds for the expressions of the alert rules (`deploy/prometheus/alerts.yml`).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};

/// What a scrape exports: the names of its samples and its histogram families.
struct Exported {
    samples: HashSet<String>,
    histograms: HashSet<String>,
}

impl Exported {
    fn parse(text: &str) -> Self {
        let mut samples = HashSet::new();
        let mut histograms = HashSet::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let mut words = declared.split(' ');
                if let (Some(name), Some("histogram")) = (words.next(), words.next()) {
                    histograms.insert(name.to_string());
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_string());
            }
        }
        Self {
            samples,
            histograms,
        }
    }

    /// Whether `name` is exported: a sample name, or a histogram's bucket, sum or count.
    fn has(&self, name: &str) -> bool {
        if self.samples.contains(name) {
            return true;
        }
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| self.histograms.contains(base))
        })
    }
}

/// Every `registrar_[a-z0-9_]+` name in `expr`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("registrar_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every query of the dashboard: panel target `expr`s (nested rows included) and the
/// template variables' queries.
fn queries(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_string());
                }
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match &variable["query"] {
            Value::String(q) => out.push(q.clone()),
            Value::Object(q) => {
                out.extend(q.get("query").and_then(Value::as_str).map(String::from))
            }
            _ => {}
        }
    }
    out
}

/// The `expr:` of every rule in `deploy/prometheus/alerts.yml` (one line each there).
fn alert_expressions() -> Vec<String> {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/alerts.yml"
    ))
    .expect("read the alert rules")
    .lines()
    .filter_map(|line| line.trim().strip_prefix("expr:"))
    .map(|expr| expr.trim().to_string())
    .collect()
}

/// The names in `queries` that `exported` lacks.
fn missing(queries: &[String], exported: &Exported) -> BTreeSet<String> {
    queries
        .iter()
        .flat_map(|q| metric_names(q))
        .filter(|name| !exported.has(name))
        .collect()
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/registrar.json"
        ))
        .expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    let queries = queries(&dashboard);
    assert!(queries.len() >= 15, "only {} queries found", queries.len());

    // Enroll, waitlist, refuse and drop, so the labelled series (by route and status, by
    // outcome) and the commit histograms have samples.
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(1, 1, json!([])).await;
    let students = app.students(3, &[]).await;
    let statuses = app.enroll_each(&students, section).await;
    assert_eq!(statuses[0], StatusCode::CREATED);
    assert_eq!(
        app.drop_section(&students[0].1, section).await.0,
        StatusCode::OK
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let exported = Exported::parse(&metrics);

    let alerts = alert_expressions();
    assert!(alerts.len() >= 4, "only {} alert rules found", alerts.len());
    let missing_in_alerts = missing(&alerts, &exported);
    assert!(
        missing_in_alerts.is_empty(),
        "the alert rules query series /metrics lacks: {missing_in_alerts:?}"
    );
    let missing = missing(&queries, &exported);
    assert!(
        missing.is_empty(),
        "the dashboard queries series /metrics lacks: {missing:?}"
    );
    // The check itself fails on a metric that does not exist.
    let bogus = vec!["rate(registrar_no_such_series_total[1m])".to_string()];
    assert_eq!(missing_len(&bogus, &exported), 1);
    let histogram = vec!["registrar_commit_batch_size_bucket".to_string()];
    assert_eq!(missing_len(&histogram, &exported), 0);
    app.stop().await;
}

fn missing_len(queries: &[String], exported: &Exported) -> usize {
    missing(queries, exported).len()
}

#[test]
fn names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le, instance) (rate(registrar_http_request_duration_seconds_bucket{route=~\"$route\"}[1m]))) / registrar_x_total"
        ),
        vec![
            "registrar_http_request_duration_seconds_bucket",
            "registrar_x_total"
        ]
    );
}
