//! `smppd optout list|add|remove|import FILE`: the opt-out list, maintained through the running
//! daemon's submit protocol (`optout` op) so that its single store writer does every write.
//!
//! Must never open the store for writing itself: a second writer would race the daemon's.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use smppd::api::client::Client;

use super::send::{Target, runtime};

#[derive(Debug, clap::Args)]
pub struct OptOutArgs {
    #[command(flatten)]
    pub target: Target,
    /// `list` (every number and scope, in order, with the keyword and time that put it there),
    /// `add NUMBER`, `remove NUMBER`, or `import FILE` (one number per line or the first CSV
    /// column; blank lines, `#` comments and a header line are skipped).
    pub action: Action,
    /// The number (add, remove) or the file (import).
    pub arg: Option<String>,
    /// add, remove, import: the sender whose opt-out list it is (a short code, number or
    /// alias; its `[[sender]]` group's address is stored), or `all` (the default): every
    /// sender. `remove` takes the number off exactly that scope.
    #[arg(long)]
    pub scope: Option<String>,
    /// list: one JSON object per line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// import: how many adds may await their answer at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Action {
    List,
    Add,
    Remove,
    Import,
}

fn refused(v: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "refused: {} ({})",
        v["error"]["code"].as_str().unwrap_or("?"),
        v["error"]["message"].as_str().unwrap_or("")
    )
}

pub fn run(args: OptOutArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let arg = match (args.action, args.arg) {
            (Action::List, None) => String::new(),
            (Action::List, Some(_)) => bail!("`optout list` takes no argument"),
            (_, Some(a)) => a,
            (Action::Import, None) => bail!("`optout import` needs a FILE"),
            (_, None) => bail!("`optout add` and `optout remove` need a NUMBER"),
        };
        if matches!(args.action, Action::List) && args.scope.is_some() {
            bail!("`optout list` lists every scope; --scope is for add, remove and import");
        }
        let mut c = args.target.connect().await?;
        let scope = args.scope.as_deref();
        match args.action {
            Action::Add => change(&mut c, "add", &arg, scope).await,
            Action::Remove => change(&mut c, "remove", &arg, scope).await,
            Action::List => list(&mut c, args.json).await,
            Action::Import => import(&mut c, &PathBuf::from(arg), scope, args.in_flight).await,
        }
    })
}

/// The `optout` request changing one number.
fn change_request(action: &str, number: &str, scope: Option<&str>) -> Value {
    let mut req = json!({"op":"optout","action":action,"number":number});
    if let Some(s) = scope {
        req["scope"] = json!(s);
    }
    req
}

/// `optout add` / `optout remove` of one number, and what it changed.
async fn change(
    c: &mut Client,
    action: &str,
    number: &str,
    scope: Option<&str>,
) -> anyhow::Result<()> {
    let v = c.call(change_request(action, number, scope)).await?;
    if v["ok"] != true {
        return Err(refused(&v));
    }
    let n = v["number"].as_str().unwrap_or("?");
    let what = match (action, v["changed"] == true) {
        ("add", true) => "added to the opt-out list",
        ("add", false) => "already on the opt-out list",
        (_, true) => "removed from the opt-out list",
        (_, false) => "was not on the opt-out list",
    };
    match v["scope"].as_str() {
        Some(scope) if scope != smppd::store::GLOBAL_SCOPE => println!("{n}: {what} of {scope}"),
        _ => println!("{n}: {what}"),
    }
    Ok(())
}

/// `optout list`: every page, as a table or one JSON object per line.
async fn list(c: &mut Client, json: bool) -> anyhow::Result<()> {
    if !json {
        println!(
            "{:<17} {:<12} {:<12} {:<20} SMSC",
            "NUMBER", "SCOPE", "KEYWORD", "SINCE (UTC)"
        );
    }
    let mut after: Option<(String, String)> = None;
    let (mut total, mut numbers) = (0u64, 0u64);
    let mut previous = String::new();
    loop {
        let mut req = json!({"op":"optout","action":"list"});
        if let Some((number, scope)) = &after {
            req["number"] = json!(number);
            req["scope"] = json!(scope);
        }
        let v = c.call(req).await?;
        if v["ok"] != true {
            return Err(refused(&v));
        }
        let page = v["numbers"].as_array().cloned().unwrap_or_default();
        for e in &page {
            total += 1;
            let number = e["number"].as_str().unwrap_or("");
            if number != previous {
                numbers += 1;
                previous = number.to_owned();
            }
            print_entry(e, json);
        }
        let last = page.last().and_then(|e| {
            Some((
                e["number"].as_str()?.to_owned(),
                e["scope"].as_str()?.to_owned(),
            ))
        });
        match last {
            Some(last) if v["more"] == true => after = Some(last),
            _ => break,
        }
    }
    if !json {
        let plural =
            |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        if total == numbers {
            println!("{numbers} {}", plural(numbers, "number", "numbers"));
        } else {
            let (n, e) = (
                plural(numbers, "number", "numbers"),
                plural(total, "entry", "entries"),
            );
            println!("{numbers} {n}, {total} {e}");
        }
    }
    Ok(())
}

fn print_entry(e: &Value, json: bool) {
    if json {
        println!("{e}");
        return;
    }
    println!(
        "{:<17} {:<12} {:<12} {:<20} {}",
        e["number"].as_str().unwrap_or("?"),
        e["scope"].as_str().unwrap_or("?"),
        e["keyword"].as_str().unwrap_or("?"),
        super::reports::utc(e["at_ms"].as_i64().unwrap_or(0)),
        e["smsc"].as_str().unwrap_or("?"),
    );
}

/// The number on one import line, or `None` for a line to skip.
fn number_field(line: &str) -> Option<&str> {
    let line = line.trim().trim_start_matches('\u{feff}');
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let first = line
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    (!first.is_empty()).then_some(first)
}

async fn import(
    c: &mut smppd::api::client::Client,
    path: &std::path::Path,
    scope: Option<&str>,
    in_flight: usize,
) -> anyhow::Result<()> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(f);
    let in_flight = in_flight.clamp(1, 10_000);
    let mut pending: HashMap<u64, (usize, String)> = HashMap::new();
    let (mut added, mut present, mut invalid) = (0u64, 0u64, 0u64);
    let mut line_no = 0usize;
    let mut eof = false;
    let mut buf = Vec::new();
    while !eof || !pending.is_empty() {
        while !eof && pending.len() < in_flight {
            buf.clear();
            // Bounded: a line longer than any number is cut and refused below.
            let n = Read::take(&mut reader, 4096)
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                eof = true;
                break;
            }
            line_no += 1;
            let line = String::from_utf8_lossy(&buf);
            let Some(number) = number_field(&line) else {
                continue;
            };
            let r = c.send(change_request("add", number, scope)).await?;
            pending.insert(r, (line_no, number.to_owned()));
        }
        if pending.is_empty() {
            break;
        }
        c.flush().await?;
        let (r, v) = c.next_line().await?;
        let Some((line_no, number)) = r.and_then(|r| pending.remove(&r)) else {
            continue;
        };
        if v["ok"] == true {
            if v["changed"] == true {
                added += 1;
            } else {
                present += 1;
            }
        } else if line_no == 1 && v["error"]["code"] == "invalid_destination" {
            // A header line such as `number` or `to`.
        } else if v["error"]["code"] == "invalid_destination" {
            invalid += 1;
            eprintln!(
                "{}:{line_no}: {number:?}: {}",
                path.display(),
                v["error"]["message"].as_str().unwrap_or("invalid number")
            );
        } else {
            return Err(refused(&v));
        }
    }
    println!(
        "imported {}: {added} added, {present} already listed, {invalid} invalid",
        path.display()
    );
    if invalid > 0 {
        bail!("{invalid} invalid numbers in {}", path.display());
    }
    Ok(())
}
