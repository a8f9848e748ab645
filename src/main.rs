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
    /// Print messages with their parts and receipts from the store (safe while the daemon runs).
    Reports(cli::reports::ReportsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Reports(args) => cli::reports::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smppd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
