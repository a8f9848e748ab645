//! The `smppd` binary: parses the command line and hands off to the library.
//! `anyhow` lives here, at the edge; the library uses typed errors.

mod cli;

use clap::{Parser, Subcommand};

/// smppd — SMPP 3.4 gateway and dispatch daemon.
#[derive(Debug, Parser)]
#[command(name = "smppd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode or encode one SMPP PDU (hex ⇄ JSON).
    #[command(subcommand)]
    Pdu(cli::pdu::PduCommand),
    /// Run the SMSC simulator (for tests, demos and benchmarks).
    Sim(Box<cli::sim::SimArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Pdu(cmd) => cli::pdu::run(cmd),
        Command::Sim(args) => cli::sim::run(*args),
    }
}
