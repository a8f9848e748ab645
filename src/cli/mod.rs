//! Subcommand implementations of the `smppd` binary (the only place `anyhow` is used).

pub mod check_config;
