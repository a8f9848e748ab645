//! libFuzzer entry for `request`; the property lives in `tests/fuzz_checks/request.rs`, which
//! `tests/fuzz_regressions.rs` replays on stable over `tests/fuzz-inputs/request/`.
#![no_main]

#[path = "../../tests/fuzz_checks/request.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
