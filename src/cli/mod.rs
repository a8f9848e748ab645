//! Subcommands of the `smppd` binary. Each lives in its own file; this is the only place (with
//! `main.rs`) where `anyhow` is used. Never put library logic here.

pub mod bench;
pub mod check_config;
pub mod log;
pub mod optout;
pub mod pdu;
pub mod reports;
pub mod reports_by;
pub mod run;
pub mod send;
pub mod send_file;
pub mod sim;
pub mod store;
pub mod text;
