//! libFuzzer entry for `roundtrip`; the property lives in `tests/fuzz_checks/roundtrip.rs`, which
//! `tests/fuzz_regressions.rs` replays on stable over `tests/fuzz-inputs/roundtrip/`.
#![no_main]

#[path = "../../tests/fuzz_checks/roundtrip.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
