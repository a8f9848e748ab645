//! `smppd check-config FILE`: validate a configuration without starting anything; with
//! `--keys`, the reference of every key; with `--annotate`, FILE with its key comments made
//! from the key tables (how `conf/smppd.toml`'s comments are written).

use std::path::PathBuf;
use std::process::ExitCode;

use smppd::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file to check.
    #[arg(required_unless_present = "keys")]
    pub file: Option<PathBuf>,
    /// Print every key (type, default, meaning) as Markdown tables, as in the README.
    #[arg(long, conflicts_with_all = ["file", "annotate"])]
    pub keys: bool,
    /// Print FILE with the comment above each key of the first section of each kind (and above
    /// its header) rewritten from the key tables.
    #[arg(long)]
    pub annotate: bool,
}

/// Prints a one-line summary and exits 0, or the error (file:line:column: key: message) on
/// stderr and exits 2.
pub fn run(args: Args) -> ExitCode {
    let Some(file) = args.file else {
        print!("{}", smppd::config::reference_markdown());
        return ExitCode::SUCCESS;
    };
    if args.annotate {
        return match std::fs::read_to_string(&file) {
            Ok(text) => {
                print!("{}", smppd::config::annotate(&text));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: cannot read the file: {e}", file.display());
                ExitCode::from(2)
            }
        };
    }
    match Config::load(&file) {
        Ok(cfg) => {
            let submit = cfg.listen.submit.to_string();
            println!(
                "{}: ok ({} SMSC{}, {} route{}, submit on {submit})",
                file.display(),
                cfg.smscs.len(),
                if cfg.smscs.len() == 1 { "" } else { "s" },
                cfg.routes.len(),
                if cfg.routes.len() == 1 { "" } else { "s" },
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
