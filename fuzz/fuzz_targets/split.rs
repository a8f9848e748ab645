//! libFuzzer entry for `split`; the property lives in `tests/fuzz_checks/split.rs`, which
//! `tests/fuzz_regressions.rs` replays on stable over `tests/fuzz-inputs/split/`.
#![no_main]

#[path = "../../tests/fuzz_checks/split.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
