//! `smppd store migrate`: applies the store's schema migrations without starting the daemon
//! (a deploy step: migrate once, then roll the instances). SQLite migrates when opened;
//! PostgreSQL migrates under an advisory lock, refusing a schema newer than this build and a
//! migration that would break live instances still running an older one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Apply the schema migrations of the store `[store]` names (path or url), then exit.
    Migrate {
        /// The daemon's configuration.
        #[arg(long, short, default_value = "conf/smppd.toml")]
        config: PathBuf,
    },
}

pub fn run(args: StoreArgs) -> Result<()> {
    match args.command {
        StoreCommand::Migrate { config } => migrate(&config),
    }
}

fn migrate(path: &Path) -> Result<()> {
    let cfg = smppd::config::Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let applied = match &cfg.store.postgres {
        Some(pg) => {
            let rt = super::send::runtime()?;
            rt.block_on(smppd::store::postgres::migrate(pg))
                .with_context(|| format!("store {}", pg.url))?
        }
        None => {
            let options = smppd::store::SqliteOptions::new(&cfg.store.path);
            let (store, recovery) = smppd::store::Store::open_sqlite(options)
                .with_context(|| format!("store {}", cfg.store.path.display()))?;
            store.backend().close();
            recovery.migrations_applied
        }
    };
    println!(
        "smppd: schema at version {}: {applied} migration(s) applied",
        match &cfg.store.postgres {
            Some(_) => smppd::store::postgres::current_version(),
            None => smppd::store::sqlite::current_version(),
        }
    );
    Ok(())
}
