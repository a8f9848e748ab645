//! Subcommand implementations of the `smppd` binary (one file each). Binary-only: `anyhow` is
//! allowed here, the library keeps typed errors.

pub mod text;
