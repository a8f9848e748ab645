//! `conf/grafana-dashboard.json` is valid JSON and its queries use only metric names that smppd
//! exports (`smppd::metrics::ALL`), so a renamed metric cannot leave a silently empty panel.

use std::collections::BTreeSet;

use serde_json::Value;

/// Histogram series carry one of these suffixes on the exported name.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not valid JSON: {e}"))
}

/// Every `expr` string anywhere in the document.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The `smppd_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("smppd_") {
        let start = i + pos;
        let boundary = start == 0 || {
            let c = bytes[start - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            names.push(expr[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// The name as declared in `smppd::metrics`, or `None` when it is not one.
fn declared(name: &str) -> Option<&'static str> {
    if let Some(m) = smppd::metrics::ALL.iter().find(|m| **m == name) {
        return Some(m);
    }
    HISTOGRAM_SUFFIXES.iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        smppd::metrics::ALL.iter().copied().find(|m| *m == base)
    })
}

#[test]
fn metric_name_extraction() {
    assert_eq!(
        metric_names("sum(rate(smppd_a_total[5m])) / x_smppd_b + smppd_c_bucket{le=\"1\"}"),
        ["smppd_a_total", "smppd_c_bucket"]
    );
    assert_eq!(
        declared("smppd_accept_to_receipt_seconds_bucket"),
        Some("smppd_accept_to_receipt_seconds")
    );
    assert_eq!(
        declared("smppd_messages_final_total"),
        Some("smppd_messages_final_total")
    );
    assert_eq!(declared("smppd_no_such_metric"), None);
}

#[test]
fn the_dashboard_uses_only_exported_metrics_and_covers_the_on_call_panels() {
    let d = dashboard();
    let mut all = Vec::new();
    exprs(&d, &mut all);
    assert!(!all.is_empty(), "no queries in the dashboard");
    let mut used = BTreeSet::new();
    for e in &all {
        let names = metric_names(e);
        assert!(!names.is_empty(), "query without an smppd metric: {e}");
        for n in names {
            let m = declared(&n)
                .unwrap_or_else(|| panic!("{n} is not in smppd::metrics::ALL (query: {e})"));
            used.insert(m);
        }
    }
    for needed in [
        smppd::metrics::MESSAGES_FINAL,
        smppd::metrics::ACCEPT_TO_RECEIPT_SECONDS,
        smppd::metrics::BIND_UP,
        smppd::metrics::QUEUE_DEPTH,
        smppd::metrics::THROTTLED,
    ] {
        assert!(used.contains(needed), "no panel uses {needed}");
    }
    // Panel ids are unique (Grafana links and edits panels by id).
    let ids: Vec<u64> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| p["id"].as_u64().expect("panel id"))
        .collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate panel ids: {ids:?}");
    assert_eq!(d["title"], "smppd");
}
