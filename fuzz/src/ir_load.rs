//! `ir_load`: `<IR .xml text> NUL <.bin bytes>` → [`aquant_ir::read_ir`] → everything `onnx_load` runs.
//!
//! The XML reader and the IR → ONNX conversion face user files (and, through POT configs, `weights` paths to
//! the wrong file): any input must give a model or an [`aquant_ir::IrError`], never a panic. A converted model
//! must encode and then go through the same downstream as a decoded ONNX file.

/// Runs one fuzz input through the IR reader, then the ONNX target's body.
pub fn ir_load(bytes: &[u8]) {
    let (xml, bin) = match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let Ok(xml) = std::str::from_utf8(xml) else {
        return;
    };
    let Ok(model) = aquant_ir::read_ir(xml, bin) else {
        return;
    };
    crate::onnx_load(&aquant_onnx::encode_model(&model));
}
