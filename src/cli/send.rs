//! `smppd send` and `smppd status`: clients of a running daemon over the submit protocol.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use smppd::api::client::Client;
use smppd::config::{Config, ListenAddr};

/// Where the daemon is.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The daemon's configuration (for its submit address and token).
    #[arg(long, short, default_value = "conf/smppd.toml")]
    pub config: PathBuf,
    /// The submit address (`host:port` or `unix:/path`), instead of reading it from --config.
    #[arg(long)]
    pub addr: Option<String>,
}

impl Target {
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let (addr, token) = match &self.addr {
            Some(a) => {
                let addr = match a.strip_prefix("unix:") {
                    Some(p) => ListenAddr::Unix(p.into()),
                    None => ListenAddr::Tcp(a.parse().with_context(|| format!("--addr {a:?}"))?),
                };
                (addr, std::env::var("SMPPD_TOKEN").ok())
            }
            None => {
                let cfg = Config::load(&self.config).map_err(|e| anyhow::anyhow!("{e}"))?;
                let token = cfg.listen.token.as_ref().map(|t| t.expose().to_owned());
                (cfg.listen.submit, token)
            }
        };
        Ok(Client::connect(&addr, token.as_deref()).await?)
    }
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: Target,
    /// Destination, E.164 (`+46701234567`).
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub to: Option<String>,
    /// The message text; with --file a template where `{column}` is that CSV column's value.
    #[arg(long, required_unless_present = "file")]
    pub text: Option<String>,
    /// A CSV file with a header line and columns `to[,text]` (more columns for --text).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// With --file: how many submits may await their answer at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Message class: `transactional` or `marketing` (refused for opted-out numbers).
    #[arg(long)]
    pub class: Option<String>,
    /// Hold the message(s) until then: an RFC 3339 time (`2026-12-24T09:00:00+01:00`) or epoch
    /// milliseconds; at most 30 days ahead. Send windows still apply after it.
    #[arg(long)]
    pub send_at: Option<String>,
    /// A submit tag, `KEY=VALUE` (repeatable): `--tag campaign=xmas` counts the message(s) for
    /// that campaign in `smppd reports --by tag:campaign` and in `[[cap]]`s with `tag`.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Sender: a number, a short code, or up to 11 characters.
    #[arg(long, default_value = "smppd")]
    pub from: String,
    /// Wait for the final state(s) and print them (with --file: a breakdown by state).
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// One `--tag KEY=VALUE`.
fn parse_tag(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{arg:?}: expected KEY=VALUE, like campaign=xmas")),
    }
}

/// Sets the submit's `tags` from `--tag`s (nothing when there are none).
pub(crate) fn put_tags(req: &mut serde_json::Value, tags: &[(String, String)]) {
    if !tags.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> =
            tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        req["tags"] = serde_json::Value::Object(map);
    }
}

/// `--send-at` as the submit's `send_at`: digits are epoch milliseconds, anything else is
/// sent as text (the daemon checks it is RFC 3339 and names `send_at` when it is not).
pub(crate) fn send_at_value(at: &str) -> serde_json::Value {
    match at.trim().parse::<i64>() {
        Ok(ms) => json!(ms),
        Err(_) => json!(at.trim()),
    }
}

/// Epoch milliseconds as RFC 3339 in UTC.
fn utc_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn send(args: SendArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let mut c = args.target.connect().await?;
        if let Some(file) = &args.file {
            return super::send_file::send_file(
                &mut c,
                super::send_file::FileJob {
                    path: file,
                    template: args.text.as_deref(),
                    from: &args.from,
                    class: args.class.as_deref(),
                    send_at: args.send_at.as_deref(),
                    tags: &args.tags,
                    in_flight: args.in_flight,
                    wait: args.wait,
                    timeout: Duration::from_secs(args.timeout),
                },
            )
            .await;
        }
        let mut req = json!({"op":"submit","to":args.to,"from":args.from,"text":args.text});
        if let Some(class) = &args.class {
            req["class"] = json!(class);
        }
        if let Some(at) = &args.send_at {
            req["send_at"] = send_at_value(at);
        }
        put_tags(&mut req, &args.tags);
        let v = c.call(req).await?;
        if v["ok"] != true {
            // `outside_window` and `frequency_capped` say when the message would be allowed.
            let when = v["error"]["allowed_at"]
                .as_i64()
                .map(|at| format!("; allowed from {}", utc_rfc3339(at)))
                .unwrap_or_default();
            bail!(
                "refused: {} ({}){when}",
                v["error"]["code"].as_str().unwrap_or("?"),
                v["error"]["message"].as_str().unwrap_or("")
            );
        }
        let id = v["id"].as_str().unwrap_or("").to_owned();
        println!(
            "accepted {id}: {} part{}, {}, route {}{}",
            v["parts"],
            if v["parts"] == 1 { "" } else { "s" },
            v["encoding"].as_str().unwrap_or("?"),
            v["route"].as_str().unwrap_or("?"),
            if v["duplicate"] == true {
                " (duplicate key)"
            } else {
                ""
            }
        );
        if let Some(until) = v["held_until"].as_i64() {
            println!("scheduled: held until {}", utc_rfc3339(until));
        }
        if !args.wait {
            return Ok(());
        }
        wait_final(&mut c, &id, Duration::from_secs(args.timeout)).await
    })
}

/// `--wait`: queries until the message is final and prints its parts; an error unless it
/// was delivered or when it is still not final after `timeout`.
async fn wait_final(c: &mut Client, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let q = c.call(json!({"op":"query","id":id})).await?;
        let m = &q["message"];
        let state = m["state"].as_str().unwrap_or("");
        if !["scheduled", "queued", "submitted"].contains(&state) {
            println!("{id}: {state} after {:.2} s", start.elapsed().as_secs_f64());
            for p in m["parts"].as_array().into_iter().flatten() {
                println!(
                    "  part {}: {} via {} (smsc id {}{})",
                    p["n"],
                    p["state"].as_str().unwrap_or("?"),
                    p["smsc"].as_str().unwrap_or("-"),
                    p["smsc_id"].as_str().unwrap_or("-"),
                    p["stat"]
                        .as_str()
                        .map(|s| format!(", stat {s}"))
                        .unwrap_or_default()
                );
            }
            return if state == "delivered" {
                Ok(())
            } else {
                bail!("{id} ended {state}")
            };
        }
        if start.elapsed() > timeout {
            bail!("{id} still {state} after {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print the raw status object as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The cluster part of `smppd status` (empty on a single node): instances, then SMSC owners.
fn render_cluster(c: &Value) -> String {
    let mut out = String::new();
    if c.is_null() {
        return out;
    }
    if c["config_mismatch"] == true {
        out.push_str("WARNING: live instances run different configurations (CONFIG column)\n\n");
    }
    out.push_str(&format!(
        "{:<16} {:<24} {:<8} {:>14} {:<16} VERSION\n",
        "INSTANCE", "ADDRESS", "STATE", "HEARTBEAT AGO", "CONFIG"
    ));
    for i in c["instances"].as_array().into_iter().flatten() {
        let me = if i["name"] == c["instance"] {
            " (this)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<16} {:<24} {:<8} {:>13.1}s {:<16} {}{}\n",
            i["name"].as_str().unwrap_or("?"),
            i["address"].as_str().unwrap_or("?"),
            i["state"].as_str().unwrap_or("?"),
            i["heartbeat_age_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            i["config_hash"].as_str().unwrap_or("?"),
            i["version"].as_str().unwrap_or("?"),
            me,
        ));
    }
    out.push_str(&format!(
        "\n{:<12} {:<16} {:>6}  CAN SEND\n",
        "SMSC", "OWNER", "EPOCH"
    ));
    for l in c["owners"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<12} {:<16} {:>6}  {}\n",
            l["smsc"].as_str().unwrap_or("?"),
            l["owner"].as_str().unwrap_or("(none)"),
            l["epoch"].to_string(),
            if l["usable"] == true { "yes" } else { "no" },
        ));
    }
    out.push('\n');
    out
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let mut c = args.target.connect().await?;
        let v = c.call(json!({"op":"status"})).await?;
        if v["ok"] != true {
            bail!("status refused: {}", v["error"]);
        }
        if args.json {
            println!("{v}");
            return Ok(());
        }
        print!("{}", render_status(&v));
        Ok(())
    })
}

fn render_status(v: &Value) -> String {
    let mut out = render_cluster(&v["cluster"]);
    out.push_str(&format!(
        "{:<12} {:<16} {:<12} {:<20} {:>9} {:>8} {:>9} {:>9}  LAST ERROR\n",
        "SMSC", "BIND", "STATE", "SINCE (UTC)", "IN-FLIGHT", "RATE/S", "TIMEOUTS", "THROTTLED"
    ));
    for s in v["smscs"].as_array().into_iter().flatten() {
        for (i, b) in s["binds"].as_array().into_iter().flatten().enumerate() {
            // The rate is the SMSC's (all its binds), shown once.
            let rate = if i == 0 {
                format!("{:.1}", s["rate"].as_f64().unwrap_or(0.0))
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{:<12} {:<16} {:<12} {:<20} {:>9} {:>8} {:>9} {:>9}  {}\n",
                s["name"].as_str().unwrap_or("?"),
                b["bind"].as_str().unwrap_or("?"),
                b["state"]
                    .as_str()
                    .unwrap_or("?")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("?"),
                b["since_ms"]
                    .as_i64()
                    .map_or_else(|| "-".to_owned(), super::reports::utc),
                b["in_flight"].to_string(),
                rate,
                b["response_timeouts"].to_string(),
                b["throttled"].to_string(),
                b["last_error"].as_str().unwrap_or("-"),
            ));
        }
    }
    out.push_str(&format!(
        "\n{:<12} {:>9} {:>9} {:>10} {:>8} {:>8}\n",
        "ROUTE", "QUEUED", "SCHEDULED", "OLDEST", "RATE/S", "TPS"
    ));
    for r in v["routes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<12} {:>9} {:>9} {:>10} {:>8.1} {:>8}\n",
            r["name"].as_str().unwrap_or("?"),
            r["queued"].to_string(),
            r["scheduled"].as_u64().unwrap_or(0),
            r["oldest_s"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s")),
            r["rate"].as_f64().unwrap_or(0.0),
            r["tps"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |t| t.to_string()),
        ));
    }
    out.push_str(&format!(
        "\n{:<12} {:>9} {:>9} {:>8}\n",
        "DELIVERY", "FINAL", "DELIVERED", "RATIO"
    ));
    for (key, label) in [("5m", "last 5 min"), ("60m", "last 60 min")] {
        let d = &v["delivery"][key];
        out.push_str(&format!(
            "{:<12} {:>9} {:>9} {:>8}\n",
            label,
            d["final"].as_u64().unwrap_or(0),
            d["delivered"].as_u64().unwrap_or(0),
            d["ratio"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
        ));
    }
    out
}

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub target: Target,
}

/// `smppd reload`: the daemon re-reads its configuration file; a bad file is refused with the
/// error (file:line:column: key: message) and the running configuration stays.
pub fn reload(args: ReloadArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let mut c = args.target.connect().await?;
        let v = c.call(json!({"op":"reload"})).await?;
        if v["ok"] != true {
            bail!(
                "reload refused, the running configuration stays: {}",
                v["error"]["message"].as_str().unwrap_or("?")
            );
        }
        println!("reloaded: {}", v["changes"].as_str().unwrap_or("?"));
        Ok(())
    })
}
