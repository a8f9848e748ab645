//! `smppd reports`: what happened to messages, from the store, while the daemon runs.
//!
//! Opens its own read-only connection (SQLite: a WAL reader that sees the last committed state
//! and never blocks the daemon's writer; PostgreSQL: a small pool of its own, so every
//! instance's messages are there) and prints messages with their parts and receipts, newest
//! first, as a table or as JSON lines; with `--by`, delivery per campaign, route or SMSC
//! instead (`reports_by`). It never writes to the store.

use anyhow::{Context, Result, bail};
use clap::Args;
use smppd::store::{
    MessageFilter, MessageId, MessageState, MessageView, Reader, ReceiptView, SCHEDULED,
};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `smppd reports`.
#[derive(Debug, Args)]
pub struct ReportsArgs {
    /// One message by its gateway id (16 hex digits).
    #[arg(long)]
    id: Option<String>,
    /// Messages to this destination (E.164, e.g. +46701234567; spaces and dashes are ignored).
    #[arg(long)]
    to: Option<String>,
    /// Messages in this state: scheduled (held until a send window opens or their send_at),
    /// queued, submitted, delivered, undeliverable, expired, rejected, failed, no_receipt,
    /// accepted.
    #[arg(long)]
    state: Option<String>,
    /// Messages accepted within this long, e.g. 90s, 30m, 2h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// At most this many messages.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print receipts that matched no message instead of messages.
    #[arg(long)]
    unmatched: bool,
    /// Delivery per value instead of messages: `tag:NAME` (e.g. tag:campaign), `route` or
    /// `smsc` (the SMSC of each message's last part sent). Takes `--since`, `--json`.
    #[arg(long, value_name = "tag:NAME|route|smsc",
          conflicts_with_all = ["id", "to", "state", "unmatched"])]
    by: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// The store file (SQLite).
    #[arg(long, default_value = "var/smppd.db")]
    db: PathBuf,
    /// Read the store this configuration names (its `[store] url`, or its `path`) instead of
    /// `--db`.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// Where the messages are read from.
enum Source {
    Sqlite(Reader),
    Postgres(
        smppd::store::postgres::PostgresReader,
        tokio::runtime::Runtime,
    ),
}

impl Source {
    fn open(args: &ReportsArgs) -> Result<Source> {
        let db = match &args.config {
            None => args.db.clone(),
            Some(path) => {
                let cfg = smppd::config::Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
                match cfg.store.postgres {
                    Some(pg) => {
                        let rt = super::send::runtime()?;
                        let reader = rt
                            .block_on(smppd::store::postgres::PostgresReader::open(&pg))
                            .with_context(|| format!("reading the store of {}", path.display()))?;
                        return Ok(Source::Postgres(reader, rt));
                    }
                    None => cfg.store.path,
                }
            }
        };
        let reader =
            Reader::open(&db).with_context(|| format!("reading the store at {}", db.display()))?;
        Ok(Source::Sqlite(reader))
    }

    fn messages(&mut self, f: &MessageFilter) -> Result<Vec<MessageView>> {
        Ok(match self {
            Source::Sqlite(r) => r.messages(f)?,
            Source::Postgres(r, rt) => rt.block_on(r.messages(f))?,
        })
    }

    fn delivery(
        &mut self,
        by: &smppd::store::ReportBy,
        since_ms: Option<i64>,
    ) -> Result<Vec<smppd::store::DeliveryRow>> {
        Ok(match self {
            Source::Sqlite(r) => r.delivery(by, since_ms)?,
            Source::Postgres(r, rt) => rt.block_on(r.delivery(by, since_ms))?,
        })
    }

    fn unmatched_receipts(&mut self, limit: usize) -> Result<Vec<ReceiptView>> {
        Ok(match self {
            Source::Sqlite(r) => r.unmatched_receipts(limit)?,
            Source::Postgres(r, rt) => rt.block_on(r.unmatched_receipts(limit))?,
        })
    }
}

/// Parses `90s`, `30m`, `2h`, `7d` into milliseconds.
fn parse_age(s: &str) -> Result<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .with_context(|| format!("--since {s:?}: add a unit (s, m, h or d), e.g. 2h"))?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .with_context(|| format!("--since {s:?}: expected a number then a unit, e.g. 2h"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("--since {s:?}: unknown unit {unit:?} (use s, m, h or d)"),
    };
    n.checked_mul(unit_ms)
        .with_context(|| format!("--since {s:?}: too large"))
}

/// Lets on-call paste a number as written: spaces, dashes, dots and parentheses are dropped and
/// a leading `00` becomes `+` (stored destinations are E.164, `+46701234567`).
fn normalize_number(s: &str) -> String {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    match compact.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => compact,
    }
}

fn now_ms() -> i64 {
    smppd::clock::now_ms()
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) from epoch milliseconds (humantime's RFC 3339, with a space
/// for the `T` and without the `Z`, which a table column does not need).
pub(crate) fn utc(ms: i64) -> String {
    let at = if ms >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64)
    } else {
        std::time::UNIX_EPOCH
    };
    let mut s = humantime::format_rfc3339_seconds(at).to_string();
    s.pop(); // the `Z`
    s.replace('T', " ")
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn receipt_line(r: &ReceiptView) -> String {
    format!(
        "receipt #{} {} smsc={} id={} stat={} err={} done={}{}",
        r.log_id,
        utc(r.at),
        r.smsc,
        r.smsc_id,
        r.stat,
        opt(&r.err),
        opt(&r.done_date),
        r.part.map(|p| format!(" part={p}")).unwrap_or_default()
    )
}

fn print_table(out: &mut impl Write, messages: &[MessageView], now: i64) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16}  {:<19}  {:<16}  {:<11}  {:<12}  {:<13}  {:>5}",
        "ID", "ACCEPTED (UTC)", "TO", "FROM", "ROUTE", "STATE", "PARTS"
    )?;
    for m in messages {
        writeln!(
            out,
            "{:<16}  {:<19}  {:<16}  {:<11}  {:<12}  {:<13}  {:>5}",
            m.id,
            utc(m.accepted_at),
            m.to,
            m.from,
            m.route,
            m.shown_state(now),
            m.parts.len()
        )?;
        for p in &m.parts {
            writeln!(
                out,
                "    part {} {} smsc={} id={} attempts={} status={} stat={} err={}{}",
                p.n,
                p.state.as_str(),
                opt(&p.smsc),
                opt(&p.smsc_id),
                p.attempts,
                p.last_status.map_or("-".into(), |s| format!("0x{s:08x}")),
                opt(&p.stat),
                opt(&p.error),
                if p.maybe_duplicate {
                    " maybe-duplicate"
                } else {
                    ""
                }
            )?;
        }
        for r in &m.receipts {
            writeln!(out, "    {}", receipt_line(r))?;
        }
    }
    Ok(())
}

/// Runs `smppd reports`.
pub fn run(args: ReportsArgs) -> Result<()> {
    // Checked before the store is opened, so a bad `--by` is named whatever the store.
    let by = args
        .by
        .as_deref()
        .map(str::parse::<smppd::store::ReportBy>)
        .transpose()?;
    let since_ms = args
        .since
        .as_deref()
        .map(parse_age)
        .transpose()?
        .map(|age| now_ms().saturating_sub(age));
    let mut reader = Source::open(&args)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Some(by) = by {
        let rows = reader.delivery(&by, since_ms)?;
        super::reports_by::print(&mut out, &by, &rows, args.json)?;
        out.flush()?;
        return Ok(());
    }
    if args.unmatched {
        let receipts = reader.unmatched_receipts(args.limit)?;
        for r in &receipts {
            if args.json {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            } else {
                writeln!(out, "{} raw={:?}", receipt_line(r), r.raw)?;
            }
        }
        out.flush()?;
        return Ok(());
    }
    let id = args
        .id
        .as_deref()
        .map(|s| s.parse::<MessageId>())
        .transpose()
        .context("--id")?;
    // `scheduled` is a view of `queued` (held, nothing sent): read those, keep the held ones.
    let scheduled = args.state.as_deref() == Some(SCHEDULED);
    let state = match args.state.as_deref() {
        Some(SCHEDULED) => Some(MessageState::Queued),
        Some(s) => Some(MessageState::from_name(s).with_context(|| {
            format!(
                "--state {s:?}: expected one of scheduled, queued, submitted, delivered, \
                 undeliverable, expired, rejected, failed, no_receipt, accepted"
            )
        })?),
        None => None,
    };
    let filter = MessageFilter {
        id,
        to: args.to.as_deref().map(normalize_number),
        state,
        since_ms,
        limit: args.limit,
    };
    let now = now_ms();
    let mut messages = reader.messages(&filter)?;
    if scheduled {
        messages.retain(|m| m.is_scheduled(now));
    }
    if args.json {
        for m in &messages {
            let mut v = serde_json::to_value(m)?;
            v["state"] = m.shown_state(now).into();
            writeln!(out, "{v}")?;
        }
    } else {
        print_table(&mut out, &messages, now)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_dates() {
        assert_eq!(parse_age("2h").ok(), Some(7_200_000));
        assert_eq!(parse_age("90s").ok(), Some(90_000));
        assert_eq!(parse_age("7d").ok(), Some(604_800_000));
        assert!(parse_age("2").is_err());
        assert!(parse_age("h").is_err());
        assert!(parse_age("2y").is_err());
        assert!(parse_age("99999999999999999d").is_err());
        assert_eq!(normalize_number("+46 70-123 45 67"), "+46701234567");
        assert_eq!(normalize_number("0046701234567"), "+46701234567");
        assert_eq!(normalize_number("72000"), "72000");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_767_225_600_000), "2026-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000 + 3_661_000), "2000-02-29 01:01:01");
    }
}
