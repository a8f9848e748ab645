//! The `smppd` binary: parses the command line and hands off to the library.
//! `anyhow` lives here, at the edge; the library uses typed errors.

mod cli;

/// The daemon allocates and frees small buffers on every request (JSON lines, PDUs, channel
/// messages); glibc's malloc/free were about a third of the tokio workers' CPU in `perf`, and
/// mimalloc's thread-local free lists cost less per call.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the daemon (foreground; SIGTERM or SIGINT stops it gracefully).
    Run(cli::run::RunArgs),
    /// Send one message, or many from a CSV file (`--file`), through a running daemon.
    Send(cli::send::SendArgs),
    /// Show a running daemon's binds and queues.
    Status(cli::send::StatusArgs),
    /// Make a running daemon re-read its configuration (like SIGHUP, but with the answer).
    Reload(cli::send::ReloadArgs),
    /// Load-test a running daemon over the submit protocol (rates, latencies, CPU, RSS).
    Bench(cli::bench::BenchArgs),
    /// The opt-out list of a running daemon: list, add, remove, import FILE.
    Optout(cli::optout::OptOutArgs),
    /// Validate a configuration file without starting anything.
    CheckConfig(cli::check_config::Args),
    /// Decode or encode one SMPP PDU (hex ⇄ JSON).
    #[command(subcommand)]
    Pdu(cli::pdu::PduCommand),
    /// Message text tools: `smppd text inspect` shows the encoding and parts of a text.
    Text(cli::text::TextArgs),
    /// Print messages with their parts and receipts from the store, or delivery per campaign,
    /// route or SMSC with `--by` (safe while the daemon runs).
    Reports(cli::reports::ReportsArgs),
    /// Run the SMSC simulator (for tests, demos and benchmarks).
    Sim(Box<cli::sim::SimArgs>),
    /// The store itself: `smppd store migrate` applies its schema migrations and exits.
    Store(cli::store::StoreArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig(args) => return cli::check_config::run(args),
        Command::Pdu(cmd) => return cli::pdu::run(cmd),
        Command::Sim(args) => return cli::sim::run(*args),
        Command::Text(args) => cli::text::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Send(args) => cli::send::send(args),
        Command::Status(args) => cli::send::status(args),
        Command::Reload(args) => cli::send::reload(args),
        Command::Bench(args) => cli::bench::bench(args),
        Command::Reports(args) => cli::reports::run(args),
        Command::Optout(args) => cli::optout::run(args),
        Command::Store(args) => cli::store::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smppd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the whole command tree (duplicate flags, bad defaults) only when asked.
    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
