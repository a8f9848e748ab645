//! `smppd send --file`: many messages from a CSV file, pipelined on one connection.
//!
//! Owns: reading the CSV (a header line, then `to[,text][,more columns]`), rendering the `--text`
//! template with `{column}` values, keeping at most `--in-flight` submits outstanding, a progress
//! bar when stdout is a terminal, and the summary (accepted, rejected by code; with `--wait` the
//! final states). Must never read the whole file into memory or hold more than `--in-flight`
//! requests: a million-row file costs the same memory as a ten-row one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use smppd::api::client::Client;

/// The longest CSV line accepted (the submit protocol's own line limit).
const MAX_CSV_LINE: usize = 64 * 1024;

/// What to send, besides the rows.
pub struct FileJob<'a> {
    pub path: &'a Path,
    /// The `--text` template; `None`: the file's `text` column.
    pub template: Option<&'a str>,
    pub from: &'a str,
    pub class: Option<&'a str>,
    /// `--send-at`, for every row.
    pub send_at: Option<&'a str>,
    /// `--tag`s, for every row.
    pub tags: &'a [(String, String)],
    pub in_flight: usize,
    pub wait: bool,
    pub timeout: Duration,
}

/// A `--text` template cut into literal text and column references.
#[derive(Debug)]
enum Piece {
    Lit(String),
    Col(usize),
}

/// Parses `{column}` references against the header; an unknown column is an error naming it.
/// `{{` and `}}` are literal braces.
fn compile_template(t: &str, header: &[String]) -> anyhow::Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => bail!("--text: unclosed {{ in the template"),
                    }
                }
                let Some(i) = header.iter().position(|h| *h == name.trim()) else {
                    bail!(
                        "--text: {{{name}}} is not a column of the file (columns: {})",
                        header.join(", ")
                    );
                };
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                out.push(Piece::Col(i));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

fn render(pieces: &[Piece], row: &[String]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Lit(l) => s.push_str(l),
            Piece::Col(i) => s.push_str(row.get(*i).map(String::as_str).unwrap_or("")),
        }
    }
    s
}

/// Splits one CSV line: commas, fields optionally in double quotes (`""` is a quote inside
/// one). A quoted field cannot span lines (one message per line keeps errors line-numbered).
fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut at_start = true;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(_) => return Err("text after a closing quote"),
                    }
                }
                c => cur.push(c),
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unclosed quote (a field cannot span lines)");
    }
    fields.push(cur);
    Ok(fields)
}

/// Reads the CSV line by line with a bounded line length.
struct Rows {
    reader: BufReader<File>,
    line_no: usize,
    buf: Vec<u8>,
}

impl Rows {
    fn open(path: &Path) -> anyhow::Result<Rows> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Rows {
            reader: BufReader::new(f),
            line_no: 0,
            buf: Vec::new(),
        })
    }

    /// The next non-empty line, split; `None` at the end.
    fn next_row(&mut self, path: &Path) -> anyhow::Result<Option<(usize, Vec<String>)>> {
        loop {
            self.buf.clear();
            let n = Read::take(&mut self.reader, MAX_CSV_LINE as u64 + 2)
                .read_until(b'\n', &mut self.buf)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if self.buf.len() > MAX_CSV_LINE + 1 && self.buf.last() != Some(&b'\n') {
                bail!(
                    "{}:{}: line longer than {MAX_CSV_LINE} bytes",
                    path.display(),
                    self.line_no
                );
            }
            let line = std::str::from_utf8(&self.buf).map_err(|e| {
                anyhow::anyhow!("{}:{}: not UTF-8 ({e})", path.display(), self.line_no)
            })?;
            let line = line.trim_end_matches(['\n', '\r']);
            let line = if self.line_no == 1 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.trim().is_empty() {
                continue;
            }
            let fields = split_csv(line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), self.line_no))?;
            return Ok(Some((self.line_no, fields)));
        }
    }
}

/// Counts the data rows (for the progress bar's length); only done on a terminal.
fn count_rows(path: &Path) -> u64 {
    let Ok(f) = File::open(path) else { return 0 };
    let n = BufReader::new(f)
        .split(b'\n')
        .map_while(Result::ok)
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    n.saturating_sub(1) as u64
}

fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_owned());
    b
}

/// Which column holds the destination, and how each row's text is made.
struct Layout {
    to_col: usize,
    template: Vec<Piece>,
}

impl Layout {
    fn from_header(path: &Path, header: &[String], template: Option<&str>) -> anyhow::Result<Self> {
        let Some(to_col) = header.iter().position(|h| h == "to") else {
            bail!(
                "{}:1: no `to` column in the header (got: {})",
                path.display(),
                header.join(", ")
            );
        };
        let template = match template {
            Some(t) => compile_template(t, header)?,
            None => match header.iter().position(|h| h == "text") {
                Some(i) => vec![Piece::Col(i)],
                None => bail!(
                    "{}:1: no `text` column and no --text template",
                    path.display()
                ),
            },
        };
        Ok(Layout { to_col, template })
    }

    /// The row's number normalized to E.164 (`0046 70-123 45 67` and `+46701234567` are one
    /// number); `None` when it does not parse (the daemon then refuses the row, naming why).
    fn number(&self, row: &[String]) -> Option<String> {
        let to = row.get(self.to_col)?.trim();
        smppd::address::Msisdn::parse(to)
            .ok()
            .map(|m| m.to_string())
    }

    fn request(&self, row: &[String], job: &FileJob<'_>) -> serde_json::Value {
        let to = row.get(self.to_col).map(|s| s.trim()).unwrap_or("");
        let mut req = json!({
            "op": "submit",
            "to": to,
            "from": job.from,
            "text": render(&self.template, row),
        });
        if let Some(class) = job.class {
            req["class"] = json!(class);
        }
        if let Some(at) = job.send_at {
            req["send_at"] = super::send::send_at_value(at);
        }
        super::send::put_tags(&mut req, job.tags);
        req
    }
}

/// What the answers said, row by row.
#[derive(Default)]
struct Tally {
    accepted_ids: Vec<String>,
    parts: u64,
    rejected: BTreeMap<String, u64>,
    /// The first rejections with their file and line, for the error output.
    first_rejections: Vec<String>,
    /// Rows skipped because their number (normalized to E.164) came before: (line, number,
    /// the line it first came on).
    duplicates: Vec<(usize, String, usize)>,
}

impl Tally {
    fn count(&mut self, v: &serde_json::Value, path: &Path, line_no: usize) {
        if v["ok"] == true {
            self.parts += v["parts"].as_u64().unwrap_or(0);
            if let Some(id) = v["id"].as_str() {
                self.accepted_ids.push(id.to_owned());
            }
            return;
        }
        let code = v["error"]["code"].as_str().unwrap_or("unknown").to_owned();
        if self.first_rejections.len() < 10 {
            self.first_rejections.push(format!(
                "{}:{line_no}: {code}: {}",
                path.display(),
                v["error"]["message"].as_str().unwrap_or("")
            ));
        }
        *self.rejected.entry(code).or_default() += 1;
    }

    fn rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn print(&self, path: &Path, elapsed: f64) {
        let accepted = self.accepted_ids.len() as u64;
        let total = accepted + self.rejected();
        for r in &self.first_rejections {
            eprintln!("{r}");
        }
        println!(
            "sent {total} rows from {} in {elapsed:.2} s ({:.0}/s)",
            path.display(),
            total as f64 / elapsed.max(1e-6)
        );
        println!("accepted: {accepted} ({} parts)", self.parts);
        println!("rejected: {}", self.rejected());
        for (code, n) in &self.rejected {
            println!("  {code}: {n}");
        }
        if !self.duplicates.is_empty() {
            println!("skipped duplicate numbers: {}", self.duplicates.len());
            for (line, number, first) in self.duplicates.iter().take(10) {
                println!(
                    "  {}:{line}: {number} (first on line {first})",
                    path.display()
                );
            }
            if self.duplicates.len() > 10 {
                println!("  … and {} more", self.duplicates.len() - 10);
            }
        }
    }
}

/// Sends every row; prints the summary (and with `wait` the final states). Fails when a row
/// was rejected or a message did not reach a final state in time, after printing the summary.
pub async fn send_file(c: &mut Client, job: FileJob<'_>) -> anyhow::Result<()> {
    let path = job.path;
    let mut rows = Rows::open(path)?;
    let Some((_, header)) = rows.next_row(path)? else {
        bail!(
            "{}: empty file (expected a header line `to[,text]`)",
            path.display()
        );
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let layout = Layout::from_header(path, &header, job.template)?;
    let in_flight = job.in_flight.clamp(1, 10_000);
    let progress = bar(count_rows(path), "sending");
    let start = Instant::now();
    let tally = send_rows(c, &mut rows, &layout, &job, &progress).await?;
    progress.finish_and_clear();
    tally.print(path, start.elapsed().as_secs_f64());
    let mut unfinished = 0;
    if job.wait && !tally.accepted_ids.is_empty() {
        unfinished = wait_final(c, tally.accepted_ids.clone(), in_flight, job.timeout).await?;
    }
    let (rejected, total) = (
        tally.rejected(),
        tally.accepted_ids.len() as u64 + tally.rejected(),
    );
    if rejected > 0 {
        bail!("{rejected} of {total} rows rejected");
    }
    if unfinished > 0 {
        bail!(
            "{unfinished} messages not final after {} s",
            job.timeout.as_secs()
        );
    }
    Ok(())
}

/// Sends the rows pipelined (at most `in_flight` unanswered) and tallies the answers.
async fn send_rows(
    c: &mut Client,
    rows: &mut Rows,
    layout: &Layout,
    job: &FileJob<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<Tally> {
    let in_flight = job.in_flight.clamp(1, 10_000);
    let mut pending: HashMap<u64, usize> = HashMap::new();
    let mut tally = Tally::default();
    // Each number once: the first row for it is sent, later ones are skipped and reported.
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut eof = false;
    while !eof || !pending.is_empty() {
        while !eof && pending.len() < in_flight {
            match rows.next_row(job.path)? {
                None => eof = true,
                Some((line_no, row)) => {
                    if let Some(number) = layout.number(&row) {
                        if let Some(first) = first_line.get(&number) {
                            tally.duplicates.push((line_no, number, *first));
                            progress.inc(1);
                            continue;
                        }
                        first_line.insert(number, line_no);
                    }
                    let r = c.send(layout.request(&row, job)).await?;
                    pending.insert(r, line_no);
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        c.flush().await?;
        let (r, v) = c.next_line().await?;
        if let Some(line_no) = r.and_then(|r| pending.remove(&r)) {
            progress.inc(1);
            tally.count(&v, job.path, line_no);
        }
    }
    Ok(tally)
}

/// Polls `query` (pipelined, `in_flight` at a time) until every message is final or the
/// timeout passes; prints the breakdown by final state. Returns how many were not final.
async fn wait_final(
    c: &mut Client,
    ids: Vec<String>,
    in_flight: usize,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let start = Instant::now();
    let progress = bar(ids.len() as u64, "waiting");
    let mut open: VecDeque<String> = ids.into();
    let mut finals: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let mut still = VecDeque::new();
        let mut pending: HashMap<u64, String> = HashMap::new();
        while !open.is_empty() || !pending.is_empty() {
            while pending.len() < in_flight {
                let Some(id) = open.pop_front() else { break };
                let r = c.send(json!({"op":"query","id":id})).await?;
                pending.insert(r, id);
            }
            c.flush().await?;
            let (r, v) = c.next_line().await?;
            let Some(id) = r.and_then(|r| pending.remove(&r)) else {
                continue;
            };
            let state = v["message"]["state"].as_str().unwrap_or("unknown");
            if v["ok"] == true && ["scheduled", "queued", "submitted"].contains(&state) {
                still.push_back(id);
            } else {
                let key = if v["ok"] == true {
                    state.to_owned()
                } else {
                    v["error"]["code"].as_str().unwrap_or("unknown").to_owned()
                };
                *finals.entry(key).or_default() += 1;
                progress.inc(1);
            }
        }
        open = still;
        if open.is_empty() || start.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.finish_and_clear();
    println!("final states after {:.2} s:", start.elapsed().as_secs_f64());
    for (state, n) in &finals {
        println!("  {state}: {n}");
    }
    if !open.is_empty() {
        println!("  not final yet: {}", open.len());
    }
    Ok(open.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_and_quotes() {
        assert_eq!(split_csv("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            split_csv(r#"+4670,"Hej, ""du""",x"#).unwrap(),
            ["+4670", r#"Hej, "du""#, "x"]
        );
        assert!(split_csv(r#""open"#).is_err());
        assert!(split_csv(r#""a"b"#).is_err());
    }

    #[test]
    fn template_columns() {
        let header = vec!["to".to_owned(), "name".to_owned()];
        let t = compile_template("Hi {name}, {{literal}}", &header).unwrap();
        assert_eq!(
            render(&t, &["+46".into(), "Ann".into()]),
            "Hi Ann, {literal}"
        );
        let e = compile_template("Hi {nmae}", &header)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{nmae}") && e.contains("to, name"), "{e}");
        assert!(compile_template("Hi {name", &header).is_err());
    }
}
