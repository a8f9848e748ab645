//! `smppd text inspect`: shows what a message will cost — the chosen encoding, the counts and
//! every part's UDH and payload in hex — using exactly the library's encoder. Never sends
//! anything.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use smppd::text::{
    self, EncodeOptions, Encoded, Encoding, EncodingRequest, LanguageSet, SplitMethod,
};

/// `smppd text ...`
#[derive(Debug, Args)]
pub struct TextArgs {
    #[command(subcommand)]
    command: TextCommand,
}

#[derive(Debug, Subcommand)]
enum TextCommand {
    /// Show the encoding, counts and parts a text would be sent as.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Split method: udh8, udh16, sar or payload.
    #[arg(long, default_value = "udh8", value_name = "METHOD")]
    split: SplitMethod,
    /// National shift tables the SMSC allows, comma-separated: tr, es, pt.
    #[arg(long, value_name = "LANGS")]
    shift: Option<LanguageSet>,
    /// Replace typographic look-alikes (curly quotes, dashes, …) to stay in GSM-7.
    #[arg(long)]
    smart: bool,
    /// Encoding: auto, gsm7, latin1 or ucs2.
    #[arg(long, default_value = "auto", value_name = "ENCODING")]
    encoding: EncodingRequest,
    /// Maximum number of parts (1–255).
    #[arg(long, default_value_t = text::DEFAULT_MAX_PARTS, value_name = "N")]
    max_parts: u8,
    /// Pack GSM 7-bit (8 septets in 7 octets) as a packed-mode SMSC expects.
    #[arg(long)]
    packed: bool,
    /// Concatenation reference to show in the UDH / SAR values.
    #[arg(long, default_value_t = 0, value_name = "REF")]
    reference: u16,
    /// `marketing`: the text as smppd sends it, with `[marketing] footer` of --config appended
    /// when it has no stop keyword (or refused as `missing_optout` under `require_optout`).
    #[arg(long, default_value = "transactional", value_name = "CLASS")]
    class: String,
    /// The daemon's configuration, for --class marketing.
    #[arg(long, short, default_value = "conf/smppd.toml")]
    config: std::path::PathBuf,
    /// The message text (may start with '-').
    #[arg(allow_hyphen_values = true)]
    text: String,
}

/// Runs `smppd text ...`.
pub fn run(args: TextArgs) -> anyhow::Result<()> {
    match args.command {
        TextCommand::Inspect(a) => inspect(a),
    }
}

/// The text a `class` message is sent with (the marketing footer of the configuration).
fn as_sent(a: &InspectArgs) -> anyhow::Result<String> {
    match a.class.as_str() {
        "transactional" => Ok(a.text.clone()),
        "marketing" => {
            let cfg = smppd::config::Config::load(&a.config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let text = cfg
                .policy
                .marketing
                .text(&a.text, &cfg.optout.stop)
                .map_err(|e| anyhow::anyhow!("missing_optout: {e}"))?;
            Ok(text.into_owned())
        }
        other => anyhow::bail!("--class {other:?}: expected transactional or marketing"),
    }
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let sent = as_sent(&a)?;
    let opts = EncodeOptions {
        languages: a.shift.unwrap_or_default(),
        encoding: a.encoding,
        smart: a.smart,
        split: a.split,
        max_parts: a.max_parts,
        packed: a.packed,
    };
    let encoded = text::encode(&sent, &opts, a.reference).context("cannot encode the text")?;
    if a.json {
        println!("{}", to_json(&encoded));
    } else {
        print!("{}", to_table(&encoded));
    }
    Ok(())
}

fn unit_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Gsm7(_) => "septets",
        Encoding::Ucs2 => "code units",
        Encoding::Latin1 | Encoding::Binary => "octets",
    }
}

fn to_json(e: &Encoded) -> serde_json::Value {
    let p = e.plan();
    let (locking, single) = match p.encoding {
        Encoding::Gsm7(t) => (t.locking().map(|l| l.code()), t.single().map(|l| l.code())),
        _ => (None, None),
    };
    let segments: Vec<_> = e
        .segments()
        .map(|s| {
            let mut seg = json!({
                "udh": hex::encode(s.udh()),
                "payload": hex::encode(s.payload()),
                "units": s.units,
            });
            if let Some(sar) = s.sar {
                seg["sar"] = json!({
                    "msg_ref_num": sar.msg_ref_num,
                    "total_segments": sar.total_segments,
                    "segment_seqnum": sar.segment_seqnum,
                });
            }
            seg
        })
        .collect();
    json!({
        "encoding": p.encoding.to_string(),
        "parts": p.parts,
        "units": p.units,
        "replaced": p.replaced,
        "segments": segments,
        "data_coding": p.data_coding,
        "characters": p.chars,
        "split": p.split.name(),
        "udhi": p.udhi,
        "packed": p.packed,
        "locking_shift": locking,
        "single_shift": single,
    })
}

fn to_table(e: &Encoded) -> String {
    use std::fmt::Write as _;
    let p = e.plan();
    let unit = unit_name(p.encoding);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "encoding:    {} (data_coding 0x{:02X})",
        p.encoding, p.data_coding
    );
    let _ = writeln!(out, "characters:  {}", p.chars);
    let _ = writeln!(out, "{:<12} {}", format!("{unit}:"), p.units);
    let _ = writeln!(out, "replaced:    {}", p.replaced);
    let _ = writeln!(
        out,
        "parts:       {} (split {}{}{})",
        p.parts,
        p.split,
        if p.udhi { ", esm_class UDHI 0x40" } else { "" },
        if p.packed { ", packed" } else { "" },
    );
    let total = e.segments().len();
    for (i, s) in e.segments().enumerate() {
        let udh = if s.udh().is_empty() {
            "-".to_owned()
        } else {
            hex::encode(s.udh())
        };
        let _ = write!(
            out,
            "part {}/{}: {} {}, udh {}",
            i + 1,
            total,
            s.units,
            unit,
            udh
        );
        if let Some(sar) = s.sar {
            let _ = write!(
                out,
                ", sar ref {} seq {}/{}",
                sar.msg_ref_num, sar.segment_seqnum, sar.total_segments
            );
        }
        let _ = writeln!(out, "\n  payload {}", hex::encode(s.payload()));
    }
    out
}
