//! `smppd reports --by`: prints the delivery report (what a row counts:
//! `smppd::store::report`) as a table or as JSON lines with stable field names. Owns the
//! presentation only; the numbers come from the store's reader.

use smppd::store::{DeliveryRow, ReportBy};
use std::io::Write;

/// `(none)` for messages without a value.
fn label(row: &DeliveryRow) -> &str {
    row.value.as_deref().unwrap_or("(none)")
}

/// A duration for a table cell: `850ms`, `12.3s`, `4m05s`, `2h07m`; `-` when there is none.
fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".into();
    };
    match ms {
        ..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1_000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1_000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

fn table(out: &mut impl Write, by: &ReportBy, rows: &[DeliveryRow]) -> std::io::Result<()> {
    let width = rows.iter().map(|r| label(r).len()).max().unwrap_or(0);
    let head = by.to_string().to_uppercase();
    let width = width.max(head.len());
    writeln!(
        out,
        "{head:<width$}  {:>9}  {:>9}  {:>7}  {:>7}  {:>7}  {:>8}  {:>6}  {:>11}  {:>7}  {:>8}  {:>7}  {:>7}",
        "ACCEPTED",
        "DELIVERED",
        "UNDELIV",
        "EXPIRED",
        "NO_RCPT",
        "REJECTED",
        "FAILED",
        "UNCONFIRMED",
        "PENDING",
        "PER_1000",
        "MEDIAN",
        "P90"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<width$}  {:>9}  {:>9}  {:>7}  {:>7}  {:>7}  {:>8}  {:>6}  {:>11}  {:>7}  {:>8.1}  {:>7}  {:>7}",
            label(r),
            r.accepted,
            r.delivered,
            r.undeliverable,
            r.expired,
            r.no_receipt,
            r.rejected,
            r.failed,
            r.unconfirmed,
            r.pending,
            r.delivered_per_1000,
            duration(r.median_ms),
            duration(r.p90_ms)
        )?;
    }
    Ok(())
}

/// Prints the rows (already sorted, most accepted first): a table, or one JSON object per line
/// with `by` and the fields of [`DeliveryRow`] (`value` null for `(none)`).
pub fn print(
    out: &mut impl Write,
    by: &ReportBy,
    rows: &[DeliveryRow],
    json: bool,
) -> anyhow::Result<()> {
    if !json {
        table(out, by, rows)?;
        return Ok(());
    }
    /// One JSON line: the report's `by`, then the row's fields in their declared order.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        by: &'a str,
        #[serde(flatten)]
        row: &'a DeliveryRow,
    }
    let by = by.to_string();
    for row in rows {
        writeln!(out, "{}", serde_json::to_string(&Line { by: &by, row })?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(None), "-");
        assert_eq!(duration(Some(850)), "850ms");
        assert_eq!(duration(Some(12_340)), "12.3s");
        assert_eq!(duration(Some(245_000)), "4m05s");
        assert_eq!(duration(Some(7_620_000)), "2h07m");
    }
}
