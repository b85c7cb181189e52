//! Reductions: IR ReduceMean, ReduceMax, ReduceMin and ReduceSum ↔ the ONNX ops of the same name; ReduceMean
//! and ReduceMax are written. The IR takes the axes as a constant input; at ONNX opset 17 ReduceSum takes them
//! as an input too and the other reductions as an attribute. Written, ONNX axes (attribute or constant input)
//! become an i64 Const; a reduction over all axes is refused.

use aquant_onnx::{attr, tensor};

use super::{arity, constant, int, ints, Family, OnnxNode};
use crate::consts::Constant;
use crate::graph::{Builder, Input};
use crate::write::{i64_const, single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[
        ("ReduceMean", read),
        ("ReduceMax", read),
        ("ReduceMin", read),
        ("ReduceSum", read),
    ],
    writes: &[("ReduceMean", write), ("ReduceMax", write)],
};

fn read(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 2)?;
    let name = layer.name.as_str();
    let axes = constant(layer, b, &inputs[1], "axes")?.ints();
    let keep = layer.flag("keep_dims", false)?;
    let mut attrs = vec![int("keepdims", i64::from(keep))];
    if layer.kind == "ReduceSum" {
        let axes = b.add_constant(&format!("{name}/axes"), Constant::i64s(&axes));
        b.node(
            "ReduceSum",
            name,
            vec![inputs[0].name.clone(), axes],
            outputs.to_vec(),
            attrs,
        );
    } else {
        attrs.push(ints("axes", &axes));
        b.node(
            &layer.kind,
            name,
            vec![inputs[0].name.clone()],
            outputs.to_vec(),
            attrs,
        );
    }
    Ok(())
}

fn write(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let (op, name) = (n.op, &n.name);
    let axes = match (attr::ints(n.node, "axes"), n.input(1)) {
        (Some(axes), _) => axes,
        (None, Some(axes)) => w
            .constant(&axes)
            .and_then(|t| tensor::to_i64(t).ok())
            .ok_or_else(|| unwritable(&format!("{op} '{name}': axes are not a constant")))?,
        (None, None) => return Err(unwritable(&format!("{op} '{name}' over all axes"))),
    };
    let keep = attr::int(n.node, "keepdims").unwrap_or(1) != 0;
    let port = w.source(n.first()?)?;
    let axes = i64_const(w, &format!("{name}/axes"), &axes);
    let kind = if op == "ReduceMean" {
        "ReduceMean"
    } else {
        "ReduceMax"
    };
    single(
        w,
        name,
        kind,
        &[("keep_dims", keep.to_string())],
        &[port, axes],
        &n.output,
    );
    w.set_rank(&n.output, if keep { n.rank } else { None });
    Ok(())
}
