//! libFuzzer entry for `frame_decoder`; the property lives in `tests/fuzz_checks/frame_decoder.rs`, which
//! `tests/fuzz_regressions.rs` replays on stable over `tests/fuzz-inputs/frame_decoder/`.
#![no_main]

#[path = "../../tests/fuzz_checks/frame_decoder.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
