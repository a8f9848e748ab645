//! The `smppd` binary: parses the command line and hands off to the library.
//! `anyhow` lives here, at the edge; the library uses typed errors.

use clap::{Parser, Subcommand};

mod cli;

/// smppd — SMPP 3.4 gateway and dispatch daemon.
#[derive(Debug, Parser)]
#[command(name = "smppd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Message text tools: `smppd text inspect` shows the encoding and parts of a text.
    Text(cli::text::TextArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Text(args) => cli::text::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
