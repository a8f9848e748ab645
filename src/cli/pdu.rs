//! `smppd pdu decode <HEX>` and `smppd pdu encode <JSON>`: one PDU between hex and the JSON form
//! of `smppd::pdu::json`. Output is one line on stdout; any error is one line on stderr naming the
//! field and the problem, with exit status 2. Never reimplement codec rules here.

use std::process::ExitCode;

use anyhow::Context;
use bytes::Bytes;
use clap::Subcommand;
use smppd::pdu::{Pdu, json};

#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode one PDU given as hex (header included) and print it as one JSON object.
    Decode {
        /// The whole PDU in hex; whitespace and a leading 0x are ignored.
        hex: String,
    },
    /// Encode one PDU given as a JSON object (the form `decode` prints) and print it as hex.
    Encode {
        /// The PDU as JSON: command, command_status, sequence_number, body fields, tlvs.
        json: String,
    },
}

pub fn run(cmd: PduCommand) -> ExitCode {
    let (what, result) = match cmd {
        PduCommand::Decode { hex } => ("decode", decode(&hex)),
        PduCommand::Encode { json } => ("encode", encode(&json)),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: the chain joined with ": ", any newline from a source flattened.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("smppd pdu {what}: {msg}");
            ExitCode::from(2)
        }
    }
}

fn decode(hex_text: &str) -> anyhow::Result<String> {
    let cleaned: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    let cleaned = cleaned.strip_prefix("0x").unwrap_or(&cleaned);
    let raw = hex::decode(cleaned).context("invalid hex")?;
    let pdu = Pdu::decode(Bytes::from(raw))
        .map_err(|e| anyhow::anyhow!("invalid PDU: {e} (command_status {})", e.command_status()))?;
    Ok(json::to_json(&pdu).to_string())
}

fn encode(json_text: &str) -> anyhow::Result<String> {
    let pdu = json::from_json_str(json_text).context("invalid PDU JSON")?;
    let wire = pdu.to_bytes().context("invalid PDU")?;
    Ok(hex::encode(wire))
}
