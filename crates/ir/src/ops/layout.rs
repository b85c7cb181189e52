//! Moving elements: IR Concat, Transpose and Gather ↔ ONNX Concat, Transpose and Gather; Concat and Transpose
//! are written. The IR gives Transpose's order and Gather's axis as constant inputs where ONNX has attributes
//! (an empty order is ONNX's default, the reversed axes); Gather's indices are widened to i64 and its
//! `batch_dims`, which ONNX's Gather lacks, is refused.

use aquant_onnx::attr;

use super::{arity, as_i64, constant, int, ints, names, Family, OnnxNode};
use crate::graph::{Builder, Input};
use crate::write::{i64_const, single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[
        ("Concat", read_concat),
        ("Transpose", read_transpose),
        ("Gather", read_gather),
    ],
    writes: &[("Concat", write_concat), ("Transpose", write_transpose)],
};

fn read_concat(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    b.node(
        "Concat",
        &layer.name,
        names(inputs),
        outputs.to_vec(),
        vec![int("axis", layer.int("axis")?)],
    );
    Ok(())
}

fn write_concat(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let ports = n
        .node
        .input
        .iter()
        .map(|i| w.source(i))
        .collect::<Result<Vec<_>, _>>()?;
    let axis = attr::int(n.node, "axis").unwrap_or(0);
    single(
        w,
        &n.name,
        "Concat",
        &[("axis", axis.to_string())],
        &ports,
        &n.output,
    );
    w.set_rank(&n.output, n.rank);
    Ok(())
}

fn read_transpose(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 2)?;
    let order = constant(layer, b, &inputs[1], "order")?.ints();
    let attrs = if order.is_empty() {
        vec![]
    } else {
        vec![ints("perm", &order)]
    };
    b.node(
        "Transpose",
        &layer.name,
        vec![inputs[0].name.clone()],
        outputs.to_vec(),
        attrs,
    );
    Ok(())
}

fn write_transpose(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let name = &n.name;
    let perm = attr::ints(n.node, "perm")
        .ok_or_else(|| unwritable(&format!("Transpose '{name}' without perm")))?;
    let port = w.source(n.first()?)?;
    let order = i64_const(w, &format!("{name}/order"), &perm);
    single(w, name, "Transpose", &[], &[port, order], &n.output);
    w.set_rank(&n.output, n.rank);
    Ok(())
}

fn read_gather(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 3)?;
    if layer
        .data
        .get("batch_dims")
        .is_some_and(|v| v.trim() != "0")
    {
        return Err(layer.malformed("Gather with batch_dims is not supported"));
    }
    let axis = constant(layer, b, &inputs[2], "axis")?.ints();
    let [axis] = axis.as_slice() else {
        return Err(layer.malformed("the axis is not a single value"));
    };
    let indices = as_i64(layer, b, &inputs[1])?;
    b.node(
        "Gather",
        &layer.name,
        vec![inputs[0].name.clone(), indices],
        outputs.to_vec(),
        vec![int("axis", *axis)],
    );
    Ok(())
}
