//! libFuzzer entry for `config`; the property lives in `tests/fuzz_checks/config.rs`, which
//! `tests/fuzz_regressions.rs` replays on stable over `tests/fuzz-inputs/config/`.
#![no_main]

#[path = "../../tests/fuzz_checks/config.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
