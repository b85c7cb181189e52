//! Values known while converting: IR Convert ↔ nothing written, ONNX Constant ↔ nothing read. A Convert of a
//! constant is folded at read time (f16 weights of IRs saved with `compress_to_fp16` become the f32
//! initializers aquant quantizes); a Convert of a computed tensor, or to f16, is a Cast. An ONNX Constant node
//! writes no layer: its value is kept and becomes a Const where a layer reads it.

use aquant_onnx::TensorProto;

use super::{arity, cast, Family, OnnxNode};
use crate::consts::Element;
use crate::graph::{Builder, Input};
use crate::write::{unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[("Convert", read_convert)],
    writes: &[("Constant", write_constant)],
};

fn read_convert(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 1)?;
    let element = layer.attr("destination_type")?;
    let target = Element::parse(element).ok_or_else(|| {
        layer.malformed(&format!("destination type '{element}' is not supported"))
    })?;
    match b
        .constant(&inputs[0].name)
        .and_then(|c| c.converted(target))
    {
        Some(folded) => b.define_constant(&outputs[0], folded),
        None => cast(layer, b, inputs[0].name.clone(), &outputs[0], element)?,
    }
    Ok(())
}

fn write_constant(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let value = n
        .node
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("value"))
        .and_then(|a| a.t.clone())
        .ok_or_else(|| unwritable(&format!("Constant '{}' has no tensor value", n.name)))?;
    w.define_constant(
        &n.output,
        TensorProto {
            name: Some(n.output.clone()),
            ..value
        },
    );
    Ok(())
}
