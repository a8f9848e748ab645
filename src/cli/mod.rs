//! Subcommands of the `smppd` binary. Each file holds one subcommand's code; `anyhow` is allowed
//! here (the binary's edge), never in the library.

pub mod reports;
