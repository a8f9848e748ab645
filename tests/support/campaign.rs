//! The reliability campaigns' load and verdict (`tests/crash_campaign.rs`,
//! `tests/fault_matrix.rs`):
//!
//! - [`Load`]: clients of the submit protocol sending messages with a unique token in the text and
//!   an idempotency key, reconnecting to each new daemon and resending what was not answered
//!   (same key, so a message stored but unanswered is not stored twice);
//! - [`check`]: compares what the clients were told (`ok`) with what the SMSCs received and what
//!   the store holds: lost messages, duplicates (and whether the store marked each one as a
//!   possible duplicate), receipts missing from or repeated in the delivery-report log, messages
//!   without exactly one final state.
//!
//! It never starts a daemon (that is [`super::daemon`]) and never changes what it compares.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::pdu::CommandStatus;
use smppd::store::{MessageFilter, MessageState, MessageView, Reader};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::smscs::Smscs;

/// How the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// About this many new messages per second over all connections.
    Rate(u32),
    /// As fast as the daemon answers, `depth` requests outstanding per connection.
    FlatOut,
    /// No new messages (unanswered ones are still resent until answered).
    Stop,
}

/// What the clients were told, shared by the load tasks.
#[derive(Default)]
pub struct Told {
    /// token → the id of every `ok` answer (all equal, or the idempotency key failed).
    pub accepted: HashMap<u64, String>,
    /// Answers whose id differed from the first answer for the same key.
    pub id_mismatches: Vec<String>,
    /// Answers `ok: true, duplicate: true` (a resend of a stored but unanswered submit).
    pub duplicates_answered: u64,
    /// `overloaded` answers.
    pub overloaded: u64,
    /// `shutting_down` answers.
    pub shutting_down: u64,
    /// Submits whose answer never came because the connection died (resent later).
    pub unanswered: u64,
    /// Any other error answer (a test failure).
    pub errors: Vec<String>,
}

/// The load generator: `connections` tasks sending submits, each token once until answered.
pub struct Load {
    pace: watch::Sender<Pace>,
    addr: watch::Sender<Option<String>>,
    pub told: Arc<Mutex<Told>>,
    next_token: Arc<AtomicU64>,
    max_tokens: u64,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

/// The text of a message: every fifth is long (two parts) and repeats its token so that every
/// part carries it; the others are one part.
pub fn text_of(token: u64) -> String {
    let tag = format!("T{token:08}.");
    if token.is_multiple_of(5) {
        format!("{tag} ").repeat(20)
    } else {
        format!("{tag} crash and fault campaign")
    }
}

fn dest_of(token: u64) -> String {
    if token.is_multiple_of(2) {
        format!("+4670{:07}", token % 10_000_000)
    } else {
        format!("+44790{:07}", token % 10_000_000)
    }
}

/// The token in a part's user data (`T` + 8 digits + `.`), if any.
pub fn token_in(payload: &[u8]) -> Option<u64> {
    payload.windows(10).find_map(|w| {
        (w[0] == b'T' && w[9] == b'.' && w[1..9].iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(&w[1..9]).ok()?.parse().ok())?
    })
}

/// The part number from a UDH (8- or 16-bit concatenation IE); 1 without one.
pub fn part_of(esm_class: u8, payload: &[u8]) -> u8 {
    if esm_class & 0x40 == 0 || payload.len() < 6 {
        return 1;
    }
    match payload[1] {
        0x00 => payload[5],
        0x08 if payload.len() >= 7 => payload[6],
        _ => 1,
    }
}

impl Load {
    /// Starts `connections` clients at `pace`; at most `max_tokens` messages in all.
    pub fn start(connections: usize, depth: usize, pace: Pace, max_tokens: u64) -> Load {
        let (pace_tx, pace_rx) = watch::channel(pace);
        let (addr_tx, addr_rx) = watch::channel(None);
        let told = Arc::new(Mutex::new(Told::default()));
        let next_token = Arc::new(AtomicU64::new(1));
        let stopping = Arc::new(AtomicBool::new(false));
        let tasks = (0..connections)
            .map(|_| {
                tokio::spawn(client(ClientCtx {
                    pace: pace_rx.clone(),
                    addr: addr_rx.clone(),
                    told: told.clone(),
                    next_token: next_token.clone(),
                    max_tokens,
                    connections,
                    depth,
                    stopping: stopping.clone(),
                }))
            })
            .collect();
        Load {
            pace: pace_tx,
            addr: addr_tx,
            told,
            next_token,
            max_tokens,
            tasks,
            stopping,
        }
    }

    pub fn set_pace(&self, pace: Pace) {
        self.pace.send_replace(pace);
    }

    /// Points the clients at a (re)started daemon, or at nothing while it is down.
    pub fn target(&self, addr: Option<&str>) {
        self.addr.send_replace(addr.map(str::to_owned));
    }

    /// Tokens handed out so far.
    pub fn generated(&self) -> u64 {
        (self.next_token.load(Ordering::Relaxed) - 1).min(self.max_tokens)
    }

    pub fn accepted(&self) -> usize {
        self.told.lock().map(|t| t.accepted.len()).unwrap_or(0)
    }

    /// Submits sent and not answered yet, over all connections.
    pub fn outstanding(&self) -> u64 {
        self.generated() - self.accepted() as u64
    }

    /// Stops new messages and waits until every message handed out was answered `ok`.
    pub async fn finish(self, timeout: Duration) -> Told {
        self.set_pace(Pace::Stop);
        self.stopping.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        for t in self.tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, t).await {
                Ok(r) => r.expect("load task"),
                Err(_) => panic!("the load did not finish within {timeout:?}"),
            }
        }
        std::mem::take(&mut *self.told.lock().expect("told"))
    }
}

struct ClientCtx {
    pace: watch::Receiver<Pace>,
    addr: watch::Receiver<Option<String>>,
    told: Arc<Mutex<Told>>,
    next_token: Arc<AtomicU64>,
    max_tokens: u64,
    connections: usize,
    depth: usize,
    stopping: Arc<AtomicBool>,
}

impl ClientCtx {
    fn new_token(&self) -> Option<u64> {
        if *self.pace.borrow() == Pace::Stop {
            return None;
        }
        let t = self.next_token.fetch_add(1, Ordering::Relaxed);
        (t <= self.max_tokens).then_some(t)
    }
}

fn request(token: u64, r: u64) -> String {
    let mut line = json!({
        "op": "submit", "ref": r, "to": dest_of(token), "from": "ACME",
        "text": text_of(token), "key": format!("k{token}"),
    })
    .to_string();
    line.push('\n');
    line
}

/// One client connection's life: connect to the current daemon, send (resends first), read the
/// answers; when the connection dies, what was unanswered is resent on the next one.
async fn client(mut cx: ClientCtx) {
    let mut resend: VecDeque<u64> = VecDeque::new();
    let mut next_ref: u64 = 0;
    loop {
        if cx.stopping.load(Ordering::Acquire)
            && resend.is_empty()
            && *cx.pace.borrow() == Pace::Stop
        {
            return;
        }
        let addr = cx.addr.borrow_and_update().clone();
        let Some(addr) = addr else {
            let _ = tokio::time::timeout(Duration::from_millis(100), cx.addr.changed()).await;
            continue;
        };
        let stream =
            match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await {
                Ok(Ok(s)) => s,
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
        let (r, mut w) = stream.into_split();
        let mut lines = TokioBufReader::new(r).lines();
        let mut outstanding: HashMap<u64, u64> = HashMap::new();
        let mut pause_until = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Fractional sends owed at the configured rate.
        let mut owed = 0.0f64;
        let mut last = Instant::now();
        'conn: loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Ok(Some(line)) = line else { break 'conn };
                    let v: Value = match serde_json::from_str(&line) {
                        Ok(v) => v,
                        Err(e) => {
                            cx.told.lock().expect("told").errors.push(format!("not JSON ({e}): {line}"));
                            continue;
                        }
                    };
                    let Some(token) = v["ref"].as_u64().and_then(|r| outstanding.remove(&r)) else {
                        cx.told.lock().expect("told").errors.push(format!("unexpected answer: {line}"));
                        continue;
                    };
                    let mut told = cx.told.lock().expect("told");
                    if v["ok"] == true {
                        let id = v["id"].as_str().unwrap_or("").to_owned();
                        if v["duplicate"] == true {
                            told.duplicates_answered += 1;
                        }
                        match told.accepted.get(&token) {
                            Some(first) if *first != id => {
                                let m = format!("token {token}: {first} then {id}");
                                told.id_mismatches.push(m);
                            }
                            Some(_) => {}
                            None => {
                                told.accepted.insert(token, id);
                            }
                        }
                    } else {
                        match v["error"]["code"].as_str() {
                            Some("overloaded") => told.overloaded += 1,
                            Some("shutting_down") => told.shutting_down += 1,
                            _ => told.errors.push(line.clone()),
                        }
                        resend.push_back(token);
                        pause_until = Instant::now() + Duration::from_millis(100);
                    }
                }
                _ = tick.tick() => {
                    if Instant::now() < pause_until {
                        continue;
                    }
                    let pace = *cx.pace.borrow();
                    let now = Instant::now();
                    let allowance = match pace {
                        Pace::Rate(r) => {
                            owed += now.duration_since(last).as_secs_f64() * f64::from(r)
                                / cx.connections as f64;
                            owed = owed.min(cx.depth as f64);
                            owed.floor() as usize
                        }
                        Pace::FlatOut => cx.depth,
                        Pace::Stop => 0,
                    };
                    last = now;
                    let room = cx.depth.saturating_sub(outstanding.len());
                    let mut batch = String::new();
                    let mut sent_new = 0;
                    // Resends do not wait for the rate: they were due long ago.
                    while outstanding.len() < cx.depth {
                        let Some(t) = resend.pop_front() else { break };
                        next_ref += 1;
                        outstanding.insert(next_ref, t);
                        batch.push_str(&request(t, next_ref));
                    }
                    while sent_new < allowance.min(room) && outstanding.len() < cx.depth {
                        let Some(t) = cx.new_token() else { break };
                        next_ref += 1;
                        outstanding.insert(next_ref, t);
                        batch.push_str(&request(t, next_ref));
                        sent_new += 1;
                    }
                    if let Pace::Rate(_) = pace {
                        owed -= sent_new as f64;
                    }
                    if !batch.is_empty() && w.write_all(batch.as_bytes()).await.is_err() {
                        break 'conn;
                    }
                    if cx.stopping.load(Ordering::Acquire) && outstanding.is_empty() && resend.is_empty() {
                        return;
                    }
                }
                changed = cx.addr.changed() => {
                    // Another daemon: this connection is to a dead one.
                    if changed.is_err() {
                        return;
                    }
                    break 'conn;
                }
            }
        }
        let lost = outstanding.len() as u64;
        cx.told.lock().expect("told").unanswered += lost;
        resend.extend(outstanding.into_values());
    }
}

/// What one SMSC part submission was, from the SMSC's log.
#[derive(Debug, Clone)]
struct SmscPart {
    smsc: &'static str,
    token: u64,
    n: u8,
    message_id: String,
}

/// The outcome of [`check`].
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Messages answered `ok` to a client.
    pub accepted: u64,
    /// Parts of those messages.
    pub parts: u64,
    /// Accepted messages with a part that no SMSC accepted (ESME_ROK).
    pub lost: Vec<String>,
    /// Extra ESME_ROK submits of a part beyond the first.
    pub duplicated: u64,
    /// Duplicated parts the store had not marked `maybe_dup`.
    pub unmarked_duplicates: Vec<String>,
    /// Parts the store marks as possible duplicates.
    pub maybe_dup_parts: u64,
    /// Messages per final state.
    pub states: BTreeMap<String, u64>,
    /// Accepted messages not in a final state (or with a part not final).
    pub not_final: Vec<String>,
    /// Messages whose events announce a final state other than exactly once.
    pub final_events_wrong: Vec<String>,
    /// Receipts the SMSCs created.
    pub receipts: u64,
    /// deliver_sm receipts the SMSCs wrote (redeliveries and duplicate copies included).
    pub receipts_sent: u64,
    /// Receipts never acknowledged by the daemon, or absent from its log.
    pub receipts_lost: Vec<String>,
    /// Receipts logged more than once.
    pub receipts_repeated: Vec<String>,
    /// Log rows that match no receipt an SMSC created.
    pub phantom_log_rows: Vec<String>,
    /// Log rows not matched to a message.
    pub unmatched_log_rows: u64,
    /// Submits at an SMSC whose token was never answered `ok` (stored before a kill; the
    /// resend with the same key then answered, so normally 0).
    pub unacknowledged_sent: u64,
}

impl Report {
    /// Panics with every problem found, if any. `dup_bound`: the most duplicates allowed, on top
    /// of every duplicate being a part the store marked `maybe_dup`.
    pub fn assert_nothing_lost(&self, dup_bound: Option<u64>) {
        let problems = self.problems(dup_bound);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// What [`Report::assert_nothing_lost`] would complain about.
    pub fn problems(&self, dup_bound: Option<u64>) -> Vec<String> {
        let mut problems = Vec::new();
        let mut add = |what: &str, v: &[String]| {
            if !v.is_empty() {
                let shown: Vec<&String> = v.iter().take(10).collect();
                problems.push(format!("{what}: {} (first: {shown:?})", v.len()));
            }
        };
        add("lost messages", &self.lost);
        add("duplicates not marked maybe_dup", &self.unmarked_duplicates);
        add("messages not final", &self.not_final);
        add("final state not announced once", &self.final_events_wrong);
        add("receipts lost", &self.receipts_lost);
        add("receipts logged twice", &self.receipts_repeated);
        add("log rows no SMSC sent", &self.phantom_log_rows);
        if let Some(bound) = dup_bound
            && self.duplicated > bound
        {
            problems.push(format!(
                "{} duplicates, more than the in-flight bound {bound}",
                self.duplicated
            ));
        }
        problems
    }
}

/// Waits until every accepted message is final in the store and every receipt the SMSCs
/// created was acknowledged, or `timeout` passes (the check then reports what is missing).
pub async fn drain(db: &Path, told: &Told, smscs: &Smscs, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let ids: HashSet<String> = told.accepted.values().cloned().collect();
    loop {
        let all_final = match read_messages(db) {
            Ok(ms) => {
                let done: HashSet<String> = ms
                    .iter()
                    .filter(|m| m.state.is_final() && m.parts.iter().all(|p| p.state.is_final()))
                    .map(|m| m.id.to_string())
                    .collect();
                ids.iter().all(|id| done.contains(id))
            }
            Err(_) => false,
        };
        if all_final && smscs.receipts_all_acked() {
            return;
        }
        if Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn read_messages(db: &Path) -> Result<Vec<MessageView>, smppd::store::StoreError> {
    let mut r = Reader::open(db)?;
    r.messages(&MessageFilter {
        limit: 10_000_000,
        ..MessageFilter::default()
    })
}

/// Compares what the clients were told with the SMSCs' logs and the store (see [`Report`]).
pub fn check(db: &Path, told: &Told, smscs: &Smscs) -> Report {
    let mut rep = Report {
        accepted: told.accepted.len() as u64,
        ..Report::default()
    };
    // Every ESME_ROK submit at the SMSCs, by (token, part).
    let mut at_smsc: HashMap<(u64, u8), Vec<SmscPart>> = HashMap::new();
    for s in smscs.all() {
        for r in s.sim.submits() {
            if r.status != Some(CommandStatus::ESME_ROK) {
                continue;
            }
            let Some(token) = token_in(&r.payload) else {
                continue;
            };
            let n = part_of(r.esm_class, &r.payload);
            at_smsc.entry((token, n)).or_default().push(SmscPart {
                smsc: s.name,
                token,
                n,
                message_id: r.message_id.clone(),
            });
        }
    }
    let mut reader = Reader::open(db).expect("open the store read-only");
    let messages = reader
        .messages(&MessageFilter {
            limit: 10_000_000,
            ..MessageFilter::default()
        })
        .expect("read messages");
    let by_id: HashMap<String, &MessageView> =
        messages.iter().map(|m| (m.id.to_string(), m)).collect();
    let accepted_tokens: HashSet<u64> = told.accepted.keys().copied().collect();
    for (&token, id) in &told.accepted {
        let Some(m) = by_id.get(id) else {
            rep.lost
                .push(format!("token {token}: message {id} not in the store"));
            continue;
        };
        if m.key.as_deref() != Some(format!("k{token}").as_str()) {
            rep.lost
                .push(format!("token {token}: message {id} has key {:?}", m.key));
        }
        *rep.states.entry(m.state.as_str().to_owned()).or_default() += 1;
        if !m.state.is_final() || m.parts.iter().any(|p| !p.state.is_final()) {
            let parts: Vec<&str> = m.parts.iter().map(|p| p.state.as_str()).collect();
            rep.not_final.push(format!(
                "token {token} {id}: {} parts {parts:?}",
                m.state.as_str()
            ));
        }
        for p in &m.parts {
            rep.parts += 1;
            rep.maybe_dup_parts += u64::from(p.maybe_duplicate);
            let sent = at_smsc.get(&(token, p.n)).map_or(0, Vec::len) as u64;
            // A part the SMSC refused for good (permanent status) is final without a submit.
            let refused = matches!(p.state.as_str(), "failed");
            if sent == 0 && !refused {
                rep.lost.push(format!(
                    "token {token} {id} part {}: no SMSC accepted it (state {})",
                    p.n,
                    p.state.as_str()
                ));
            }
            if sent > 1 {
                rep.duplicated += sent - 1;
                if !p.maybe_duplicate {
                    let ids: Vec<String> = at_smsc[&(token, p.n)]
                        .iter()
                        .map(|s| format!("{}:{}", s.smsc, s.message_id))
                        .collect();
                    rep.unmarked_duplicates
                        .push(format!("token {token} {id} part {}: {ids:?}", p.n));
                }
            }
        }
    }
    rep.unacknowledged_sent = at_smsc
        .keys()
        .filter(|(t, _)| !accepted_tokens.contains(t))
        .count() as u64;

    // Receipts: every one an SMSC created is in the log exactly once (by SMSC and raw text,
    // which holds the id and the dates), and the log holds nothing else.
    let mut log: HashMap<(String, String), u64> = HashMap::new();
    for m in &messages {
        for r in &m.receipts {
            *log.entry((r.smsc.clone(), r.raw.clone())).or_default() += 1;
        }
    }
    let unmatched = reader
        .unmatched_receipts(10_000_000)
        .expect("unmatched receipts");
    rep.unmatched_log_rows = unmatched.len() as u64;
    for r in &unmatched {
        *log.entry((r.smsc.clone(), r.raw.clone())).or_default() += 1;
    }
    let mut created: HashSet<(String, String)> = HashSet::new();
    for s in smscs.all() {
        for r in s.sim.receipts_log() {
            rep.receipts += 1;
            rep.receipts_sent += r.sent;
            let key = (s.name.to_owned(), r.text.clone());
            let rows = log.get(&key).copied().unwrap_or(0);
            if r.acked == 0 || rows == 0 {
                rep.receipts_lost.push(format!(
                    "{} #{} {} (sent {}, acked {}, log rows {rows})",
                    s.name, r.serial, r.message_id, r.sent, r.acked
                ));
            } else if rows > 1 {
                rep.receipts_repeated.push(format!(
                    "{} #{} {}: {rows} log rows",
                    s.name, r.serial, r.message_id
                ));
            }
            created.insert(key);
        }
    }
    for (key, n) in &log {
        if !created.contains(key) {
            rep.phantom_log_rows.push(format!("{key:?} x{n}"));
        }
    }

    // Exactly one final state per message, as the event stream announces it.
    // The last state announced per message: a move into a final state, or from one final
    // state to another (a receipt correcting an earlier one), counts.
    let mut last: HashMap<String, String> = HashMap::new();
    let mut finals: HashMap<String, u32> = HashMap::new();
    let mut after = 0;
    loop {
        let page = reader.events_after(after, 10_000).expect("events");
        if page.is_empty() {
            break;
        }
        for ev in &page {
            after = ev.seq;
            if ev.kind != "dlr" && ev.kind != "state" {
                continue;
            }
            let body = ev.fields();
            let (Some(id), Some(state)) = (body["id"].as_str(), body["state"].as_str()) else {
                continue;
            };
            let is_final = MessageState::from_name(state).is_some_and(MessageState::is_final);
            let was = last.insert(id.to_owned(), state.to_owned());
            if is_final && was.as_deref() != Some(state) {
                *finals.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    for (&token, id) in &told.accepted {
        let n = finals.get(id).copied().unwrap_or(0);
        if n != 1 && by_id.get(id).is_some_and(|m| m.state.is_final()) {
            rep.final_events_wrong
                .push(format!("token {token} {id}: final {n} times"));
        }
    }
    rep
}

/// A plain-text table: a header row and rows of cells, columns padded to fit.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

/// Prints `text` to stdout at once (test output is captured unless `--nocapture`) and, when
/// `SMPPD_CAMPAIGN_OUT` names a file, appends it there too (the campaign script collects the
/// tables of every test this way).
pub fn emit(text: &str) {
    println!("{text}");
    let _ = std::io::stdout().flush();
    if let Ok(path) = std::env::var("SMPPD_CAMPAIGN_OUT")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{text}");
    }
}

/// A number from the environment (campaign scale knobs), or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
