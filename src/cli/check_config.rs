//! `smppd check-config FILE`: validate a configuration without starting anything.

use std::path::PathBuf;
use std::process::ExitCode;

use smppd::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file to check.
    pub file: PathBuf,
}

/// Prints a one-line summary and exits 0, or the error (file:line:column: key: message) on
/// stderr and exits 2.
pub fn run(args: Args) -> ExitCode {
    match Config::load(&args.file) {
        Ok(cfg) => {
            let submit = cfg.listen.submit.to_string();
            println!(
                "{}: ok ({} SMSC{}, {} route{}, submit on {submit})",
                args.file.display(),
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
