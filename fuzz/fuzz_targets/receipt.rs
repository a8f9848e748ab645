//! libFuzzer entry for `receipt`; the property lives in `tests/fuzz_checks/receipt.rs`, which
//! `tests/fuzz_regressions.rs` replays on stable over `tests/fuzz-inputs/receipt/`.
#![no_main]

#[path = "../../tests/fuzz_checks/receipt.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
