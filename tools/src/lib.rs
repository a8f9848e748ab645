//! Shared plumbing of the measurement programs in `src/bin/` (`kannel-load`, `scaling`). They
//! are programs, not benchmarks: criterion benchmarks of the hot paths stay in `../benches/`.
#![forbid(unsafe_code)]

pub mod common;
