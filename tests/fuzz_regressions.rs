//! Replays the inputs kept under `tests/fuzz-inputs/<target>/` through the cargo-fuzz targets'
//! own properties (`tests/fuzz_checks/<target>.rs`, which `fuzz/fuzz_targets/<target>.rs`
//! includes), so every input that ever crashed, and a sample of each corpus, stays covered by
//! `cargo test` on stable without a fuzzer. To keep a new crash: copy it from
//! `fuzz/artifacts/<target>/` into `tests/fuzz-inputs/<target>/` (README, "Fuzzing").

use std::path::Path;

#[path = "fuzz_checks/config.rs"]
mod config;
#[path = "fuzz_checks/frame_decoder.rs"]
mod frame_decoder;
#[path = "fuzz_checks/receipt.rs"]
mod receipt;
#[path = "fuzz_checks/request.rs"]
mod request;
#[path = "fuzz_checks/roundtrip.rs"]
mod roundtrip;
#[path = "fuzz_checks/split.rs"]
mod split;

/// Runs `check` on every file of `tests/fuzz-inputs/<target>/`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-inputs")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).expect("readable input");
        let name = path.display().to_string();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            eprintln!("failing input: {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn frame_decoder_inputs() {
    replay("frame_decoder", frame_decoder::check);
}

#[test]
fn roundtrip_inputs() {
    replay("roundtrip", roundtrip::check);
}

#[test]
fn receipt_inputs() {
    replay("receipt", receipt::check);
}

#[test]
fn request_inputs() {
    replay("request", request::check);
}

#[test]
fn config_inputs() {
    replay("config", config::check);
}

#[test]
fn split_inputs() {
    replay("split", split::check);
}
