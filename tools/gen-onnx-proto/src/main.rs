//! Regenerates the checked-in prost types of `crates/onnx` so that normal builds need no `protoc`.
//!
//! Run from the repository root: `cargo run --manifest-path tools/gen-onnx-proto/Cargo.toml`.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/onnx");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let out = root.join("src/generated");
    std::fs::create_dir_all(&out)?;
    prost_build::Config::new()
        .out_dir(&out)
        // Tensor payloads are shared buffers: cloning a model, or slicing a memory-mapped file into it, copies
        // no weights.
        .bytes([".onnx.TensorProto.raw_data"])
        .compile_protos(&[root.join("proto/onnx.proto")], &[root.join("proto")])?;
    println!("wrote {}", out.join("onnx.rs").display());
    Ok(())
}
