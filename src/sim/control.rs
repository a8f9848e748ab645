//! The simulator's control language: one command per line, used by the local control port of
//! `smppd sim --control ADDR` (e.g. `echo "throttle_every 10" | nc 127.0.0.1 PORT`) and by
//! [`super::SimControl::command`] in tests. Every answer is one line: `ok`, a JSON object
//! (`stats`, `faults`), or `error: …`. The control port listens on loopback only by the caller's
//! choice and never accepts more than a line of 4 KiB.
//!
//! | command | effect |
//! |---|---|
//! | `stats` | the counters as JSON |
//! | `pacing` | submits per 100 ms over the last minute and the largest 100 ms window, as JSON |
//! | `pacing_reset` | restart the pacing figures |
//! | `faults` | the faults in force |
//! | `reset` | clear every fault |
//! | `throttle_every N` | every Nth submit → ESME_RTHROTTLED (0 = off) |
//! | `throttle_above_tps N` | submits beyond N per second → ESME_RTHROTTLED (0 = off) |
//! | `reject_binds STATUS` / `reject_binds off` | reject binds with STATUS (name, `0x…` or decimal) |
//! | `fail FRACTION [STATUS]` | fail that fraction of submits (default ESME_RSYSERR) |
//! | `drop_after N` | close a connection at its Nth submit (0 = off) |
//! | `response_delay DURATION` | delay submit responses (`250ms`, `2s`) |
//! | `silent on\|off` | answer nothing at all |
//! | `ignore_enquire_link on\|off` | do not answer enquire_link |
//! | `receipts on\|off` | send receipts |
//! | `receipt_delay DURATION` / `receipt_delay MIN..MAX` | delay between submit and receipt (a range: each receipt's own, uniform) |
//! | `receipt_mix DELIVRD=90,UNDELIV=5,EXPIRED=3,REJECTD=2` | weights of final states |
//! | `receipt_ids same\|other\|other_text` | id base in receipts |
//! | `receipts_before_response on\|off` | receipt before submit_sm_resp |
//! | `duplicate_receipts on\|off` | every receipt twice |
//! | `drop` | close every connection now |
//! | `malformed body\|command\|length` | send a malformed PDU to every ESME |
//! | `mo FROM TO TEXT…` / `mo_concat FROM TO TEXT…` | inject a mobile-originated message |
//! | `mo_part FROM TO REF TOTAL SEQ TEXT…` | inject one part of a concatenated MO (UDH 8-bit) |
//! | `unknown_receipt ID` | a receipt for an id never issued |

use std::str::SplitWhitespace;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tracing::warn;

use super::{Malformed, MoMessage, MoPart, ReceiptIds, SimControl, StatusMix};
use crate::pdu::CommandStatus;

/// A command that could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// The first word is not a command.
    #[error("unknown command {0:?} (commands: {COMMANDS})")]
    Unknown(String),
    /// An argument is missing or malformed.
    #[error("{command}: {problem}")]
    Argument {
        /// The command.
        command: String,
        /// What is wrong.
        problem: String,
    },
}

/// Every command, for error messages.
pub const COMMANDS: &str = "stats, faults, reset, throttle_every, throttle_above_tps, reject_binds, \
fail, drop_after, response_delay, silent, ignore_enquire_link, receipts, receipt_delay, receipt_mix, \
receipt_ids, receipts_before_response, duplicate_receipts, drop, malformed, mo, mo_concat, \
mo_part, unknown_receipt, pacing, pacing_reset";

/// Parses a duration: `250ms`, `2s`, `1m`, or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let n: f64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    };
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_micros((ms * 1000.0) as u64))
}

/// Parses a status: `ESME_RTHROTTLED`, `0x58` or `88`.
pub fn parse_status(s: &str) -> Option<CommandStatus> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok().map(CommandStatus);
    }
    if let Ok(n) = s.parse::<u32>() {
        return Some(CommandStatus(n));
    }
    CommandStatus::ALL
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(s))
        .map(|(st, _)| *st)
}

fn on_off(command: &str, v: Option<&str>) -> Result<bool, ControlError> {
    match v {
        Some("on" | "true" | "1") => Ok(true),
        Some("off" | "false" | "0") => Ok(false),
        _ => Err(arg(command, "expected on or off")),
    }
}

fn arg(command: &str, problem: &str) -> ControlError {
    ControlError::Argument {
        command: command.to_owned(),
        problem: problem.to_owned(),
    }
}

fn number<T: std::str::FromStr>(command: &str, v: Option<&str>) -> Result<T, ControlError> {
    v.and_then(|v| v.parse().ok())
        .ok_or_else(|| arg(command, "expected a number"))
}

fn duration(command: &str, v: Option<&str>) -> Result<Duration, ControlError> {
    v.and_then(parse_duration)
        .ok_or_else(|| arg(command, "expected a duration such as 250ms or 2s"))
}

/// Parses a receipt delay: one duration (`2s`: every receipt waits that long) or a range
/// `MIN..MAX` (`1s..30s`: each receipt's delay drawn uniformly from it). `None` when malformed or
/// MIN > MAX.
pub fn parse_delay_range(s: &str) -> Option<(Duration, Duration)> {
    match s.split_once("..") {
        None => parse_duration(s).map(|d| (d, d)),
        Some((lo, hi)) => {
            let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
            (lo <= hi).then_some((lo, hi))
        }
    }
}

/// Parses `DELIVRD=90,UNDELIV=5,EXPIRED=3,REJECTD=2` (missing states weigh 0).
pub fn parse_mix(s: &str) -> Option<StatusMix> {
    let mut mix = StatusMix {
        delivered: 0,
        undeliverable: 0,
        expired: 0,
        rejected: 0,
    };
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let (k, v) = item.split_once('=')?;
        let v: u32 = v.trim().parse().ok()?;
        match k.trim().to_ascii_uppercase().as_str() {
            "DELIVRD" => mix.delivered = v,
            "UNDELIV" => mix.undeliverable = v,
            "EXPIRED" => mix.expired = v,
            "REJECTD" => mix.rejected = v,
            _ => return None,
        }
    }
    Some(mix)
}

/// Applies one command line.
pub fn apply(sim: &SimControl, line: &str) -> Result<String, ControlError> {
    let line = line.trim();
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else {
        return Err(ControlError::Unknown(String::new()));
    };
    if let Some(report) = report(sim, command) {
        return Ok(report);
    }
    // The first argument is taken here: a group that does not know the command must leave the
    // words as they were for the next.
    let a1 = words.next();
    if fault(sim, command, a1, &mut words)?
        || receipt_setting(sim, command, a1)?
        || action(sim, command, a1, &mut words)?
    {
        Ok("ok".to_owned())
    } else {
        Err(ControlError::Unknown(command.to_owned()))
    }
}

/// The commands that answer with a report rather than `ok`.
fn report(sim: &SimControl, command: &str) -> Option<String> {
    match command {
        "stats" => Some(serde_json::to_string(&sim.stats()).unwrap_or_default()),
        "pacing" => Some(serde_json::to_string(&sim.pacing()).unwrap_or_default()),
        "faults" => Some(format!("{:?}", sim.faults())),
        _ => None,
    }
}

/// The fault commands; `Ok(false)` when `command` is not one of them.
fn fault(
    sim: &SimControl,
    command: &str,
    a1: Option<&str>,
    words: &mut SplitWhitespace,
) -> Result<bool, ControlError> {
    match command {
        "reset" => sim.update_faults(|f| *f = Default::default()),
        "throttle_every" => {
            let n = number(command, a1)?;
            sim.update_faults(|f| f.throttle_every = n);
        }
        "throttle_above_tps" => {
            let n = number(command, a1)?;
            sim.update_faults(|f| f.throttle_above_tps = n);
        }
        "reject_binds" => {
            let status = match a1 {
                Some("off") => None,
                Some(s) => Some(parse_status(s).ok_or_else(|| arg(command, "unknown status"))?),
                None => return Err(arg(command, "expected a status or off")),
            };
            sim.update_faults(|f| f.reject_binds = status);
        }
        "fail" => {
            let fraction: f64 = number(command, a1)?;
            if !(0.0..=1.0).contains(&fraction) {
                return Err(arg(command, "the fraction must be within 0..=1"));
            }
            let status = match words.next() {
                Some(s) => Some(parse_status(s).ok_or_else(|| arg(command, "unknown status"))?),
                None => None,
            };
            sim.update_faults(|f| {
                f.fail_fraction = fraction;
                f.fail_status = status;
            });
        }
        "drop_after" => {
            let n = number(command, a1)?;
            sim.update_faults(|f| f.drop_after = n);
        }
        "response_delay" => {
            let d = duration(command, a1)?;
            sim.update_faults(|f| f.response_delay = d);
        }
        "silent" => {
            let on = on_off(command, a1)?;
            sim.update_faults(|f| f.silent = on);
        }
        "ignore_enquire_link" => {
            let on = on_off(command, a1)?;
            sim.update_faults(|f| f.ignore_enquire_link = on);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The receipt settings; `Ok(false)` when `command` is not one of them.
fn receipt_setting(
    sim: &SimControl,
    command: &str,
    a1: Option<&str>,
) -> Result<bool, ControlError> {
    match command {
        "receipts" => {
            let on = on_off(command, a1)?;
            sim.update_receipts(|r| r.enabled = on);
        }
        "receipt_delay" => {
            let (lo, hi) = a1.and_then(parse_delay_range).ok_or_else(|| {
                arg(
                    command,
                    "expected a duration (250ms, 2s) or a range MIN..MAX (1s..30s) with MIN <= MAX",
                )
            })?;
            sim.update_receipts(|r| {
                r.delay = lo;
                r.delay_max = hi;
            });
        }
        "receipt_mix" => {
            let mix = a1
                .and_then(parse_mix)
                .ok_or_else(|| arg(command, "expected DELIVRD=N,UNDELIV=N,EXPIRED=N,REJECTD=N"))?;
            sim.update_receipts(|r| r.mix = mix);
        }
        "receipt_ids" => {
            let ids = match a1 {
                Some("same") => ReceiptIds::Same,
                Some("other") => ReceiptIds::Other,
                Some("other_text") => ReceiptIds::OtherInText,
                _ => return Err(arg(command, "expected same, other or other_text")),
            };
            sim.update_receipts(|r| r.ids = ids);
        }
        "receipts_before_response" => {
            let on = on_off(command, a1)?;
            sim.update_receipts(|r| r.before_response = on);
        }
        "duplicate_receipts" => {
            let on = on_off(command, a1)?;
            sim.update_receipts(|r| r.duplicate = on);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The commands that act at once (drop, malformed PDUs, injected MO and receipts, pacing
/// reset); `Ok(false)` when `command` is not one of them.
fn action(
    sim: &SimControl,
    command: &str,
    a1: Option<&str>,
    words: &mut SplitWhitespace,
) -> Result<bool, ControlError> {
    match command {
        "pacing_reset" => sim.reset_pacing(),
        "drop" => sim.drop_connections(),
        "malformed" => {
            let kind = match a1 {
                Some("body") => Malformed::Body,
                Some("command") => Malformed::UnknownCommand,
                Some("length") => Malformed::OversizeLength,
                _ => return Err(arg(command, "expected body, command or length")),
            };
            sim.send_malformed(kind);
        }
        "mo" | "mo_concat" => {
            let usage = "expected FROM TO TEXT";
            let from = a1.ok_or_else(|| arg(command, usage))?;
            let to = words.next().ok_or_else(|| arg(command, usage))?;
            sim.inject_mo(MoMessage {
                system_id: None,
                from: from.to_owned(),
                to: to.to_owned(),
                text: words.collect::<Vec<_>>().join(" "),
                concatenated: command == "mo_concat",
            });
        }
        "mo_part" => {
            let usage = "expected FROM TO REF TOTAL SEQ TEXT";
            let from = a1.ok_or_else(|| arg(command, usage))?;
            let to = words.next().ok_or_else(|| arg(command, usage))?;
            let reference = number(command, words.next())?;
            let total = number(command, words.next())?;
            let seq = number(command, words.next())?;
            sim.inject_mo_part(MoPart {
                from: from.to_owned(),
                to: to.to_owned(),
                reference,
                total,
                seq,
                text: words.collect::<Vec<_>>().join(" "),
            });
        }
        "unknown_receipt" => {
            let id = a1.ok_or_else(|| arg(command, "expected an id"))?;
            sim.inject_unknown_receipt(None, id);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Serves the control language on `listener`, one connection at a time per task, until the
/// listener fails. Lines longer than 4 KiB close the connection.
pub async fn serve(listener: TcpListener, sim: SimControl) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "control port accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let sim = sim.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r.take_limited()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim().is_empty() {
                    continue;
                }
                let answer = match apply(&sim, &line) {
                    Ok(a) => a,
                    Err(e) => format!("error: {e}"),
                };
                if w.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            tracing::debug!(%peer, "control connection closed");
        });
    }
}

/// Bounds what one control connection may send in total without a newline.
trait TakeLimited: Sized {
    fn take_limited(self) -> LineLimited<Self>;
}

impl<R: tokio::io::AsyncRead + Unpin> TakeLimited for R {
    fn take_limited(self) -> LineLimited<Self> {
        LineLimited {
            inner: self,
            since_newline: 0,
        }
    }
}

/// A reader that reports end of stream once 4 KiB arrive without a newline, so `lines()` never
/// buffers an unbounded line.
struct LineLimited<R> {
    inner: R,
    since_newline: usize,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for LineLimited<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.since_newline > 4096 {
            return std::task::Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        let since = match new.iter().rposition(|&b| b == b'\n') {
            Some(i) => new.len() - i - 1,
            None => self.since_newline + new.len(),
        };
        self.since_newline = since;
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_statuses_and_mixes() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("40"), Some(Duration::from_millis(40)));
        assert_eq!(parse_duration("2h"), None);
        assert_eq!(parse_status("ESME_RTHROTTLED"), Some(CommandStatus(0x58)));
        assert_eq!(parse_status("0x14"), Some(CommandStatus(0x14)));
        assert_eq!(parse_status("8"), Some(CommandStatus(8)));
        assert_eq!(parse_status("NOPE"), None);
        let mix = parse_mix("DELIVRD=90,UNDELIV=5,expired=3,REJECTD=2").unwrap();
        assert_eq!(
            (mix.delivered, mix.undeliverable, mix.expired, mix.rejected),
            (90, 5, 3, 2)
        );
        assert!(parse_mix("DELIVERED=1").is_none());
    }
}
