//! One test per input that once crashed a fuzz target, named after what it found (issue 7).
//!
//! The inputs live in `regressions/<target>/`; `replay.rs` also replays every file there, so an input added
//! without a test here is still checked. The library-level tests of the same names (in aquant-onnx and aquant)
//! pin the exact error each now gets.

fn input(target: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/regressions/{target}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn raw_data_byte_size_overflow() {
    aquant_fuzz::onnx_load(&input("onnx_load", "raw_data_byte_size_overflow.onnx"));
}

#[test]
fn npy_rows_times_row_bytes_overflow() {
    aquant_fuzz::data_spec(&input("data_spec", "npy_rows_times_row_bytes_overflow"));
}

#[test]
fn npy_row_bytes_overflow() {
    aquant_fuzz::data_spec(&input("data_spec", "npy_row_bytes_overflow"));
}
