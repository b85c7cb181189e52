//! Shapes: IR Reshape, Squeeze, Unsqueeze, ShapeOf and Range ↔ ONNX Reshape, Squeeze, Unsqueeze, Shape and
//! Range; ONNX Reshape and Flatten are written (Flatten as a Reshape to `[0, -1]`). The IR's `special_zero` is
//! ONNX's `allowzero` negated. ONNX shape, axes and bounds are i64 where the IR also allows i32, so those
//! inputs are widened (a constant at read time, a computed one by a Cast).

use aquant_onnx::attr;

use super::{arity, as_i64, cast, int, names, Family, OnnxNode};
use crate::graph::{Builder, Input};
use crate::write::{i64_const, single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[
        ("Reshape", read_reshape),
        ("Squeeze", read_squeeze),
        ("Unsqueeze", read_squeeze),
        ("ShapeOf", read_shape_of),
        ("Range", read_range),
    ],
    writes: &[("Reshape", write_reshape), ("Flatten", write_flatten)],
};

fn read_reshape(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 2)?;
    let shape = as_i64(layer, b, &inputs[1])?;
    let allowzero = i64::from(!layer.flag("special_zero", false)?);
    let attrs = if allowzero == 1 {
        vec![int("allowzero", 1)]
    } else {
        vec![]
    };
    b.node(
        "Reshape",
        &layer.name,
        vec![inputs[0].name.clone(), shape],
        outputs.to_vec(),
        attrs,
    );
    Ok(())
}

fn write_reshape(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let name = &n.name;
    let shape = n
        .input(1)
        .ok_or_else(|| unwritable(&format!("Reshape '{name}' has no shape")))?;
    let special_zero = attr::int(n.node, "allowzero").unwrap_or(0) == 0;
    let out_rank = w
        .constant(&shape)
        .map(|t| t.dims.first().copied().unwrap_or(0) as usize);
    let ports = [w.source(n.first()?)?, w.source(&shape)?];
    single(
        w,
        name,
        "Reshape",
        &[("special_zero", special_zero.to_string())],
        &ports,
        &n.output,
    );
    w.set_rank(&n.output, out_rank);
    Ok(())
}

/// Flatten on axis 1 → Reshape to `[0, -1]` with `special_zero`.
fn write_flatten(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let name = &n.name;
    if attr::int(n.node, "axis").unwrap_or(1) != 1 {
        return Err(unwritable(&format!(
            "Flatten '{name}' on an axis other than 1"
        )));
    }
    let port = w.source(n.first()?)?;
    let shape = i64_const(w, &format!("{name}/shape"), &[0, -1]);
    single(
        w,
        name,
        "Reshape",
        &[("special_zero", "true".into())],
        &[port, shape],
        &n.output,
    );
    w.set_rank(&n.output, Some(2));
    Ok(())
}

/// Squeeze and Unsqueeze, with their axes input when given.
fn read_squeeze(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let mut ins = vec![inputs[0].name.clone()];
    if let Some(axes) = inputs.get(1) {
        ins.push(as_i64(layer, b, axes)?);
    }
    b.node(&layer.kind, &layer.name, ins, outputs.to_vec(), vec![]);
    Ok(())
}

/// ShapeOf → Shape (always i64 in ONNX), then a Cast when the IR asks for another element type.
fn read_shape_of(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let name = layer.name.as_str();
    let tensors = names(inputs);
    let element = layer.data.get("output_type").map_or("i64", String::as_str);
    if element == "i64" {
        b.node("Shape", name, tensors, outputs.to_vec(), vec![]);
    } else {
        let shape = b.fresh(&format!("{name}/i64"));
        b.node("Shape", name, tensors, vec![shape.clone()], vec![]);
        cast(layer, b, shape, &outputs[0], element)?;
    }
    Ok(())
}

/// Range of i64 (start, stop, step); other element types are refused.
fn read_range(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 3)?;
    let element = layer.data.get("output_type").map_or("i64", String::as_str);
    if element != "i64" {
        return Err(layer.malformed(&format!("Range of {element} is not supported")));
    }
    let bounds = inputs
        .iter()
        .map(|i| as_i64(layer, b, i))
        .collect::<Result<Vec<_>, _>>()?;
    b.node("Range", &layer.name, bounds, outputs.to_vec(), vec![]);
    Ok(())
}
