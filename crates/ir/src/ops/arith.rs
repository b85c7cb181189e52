//! Elementwise arithmetic and comparisons: IR Add, Multiply, Subtract, Divide, Power, Maximum, Minimum, Equal,
//! Less and Greater ↔ ONNX Add, Mul, Sub, Div, Pow, Max, Min, Equal, Less and Greater. ONNX broadcasts as numpy
//! does, so an IR op broadcasting otherwise is refused; the four ops of the models aquant quantizes (Add, Mul,
//! Sub, Div) are written, with numpy broadcasting.

use super::{arity, names, Family, OnnxNode};
use crate::graph::{Builder, Input};
use crate::write::{single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[
        ("Add", read),
        ("Multiply", read),
        ("Subtract", read),
        ("Divide", read),
        ("Power", read),
        ("Maximum", read),
        ("Minimum", read),
        ("Equal", read),
        ("Less", read),
        ("Greater", read),
    ],
    writes: &[
        ("Add", write),
        ("Mul", write),
        ("Sub", write),
        ("Div", write),
    ],
};

fn read(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 2)?;
    let broadcast = layer
        .data
        .get("auto_broadcast")
        .map_or("numpy", String::as_str);
    if !matches!(broadcast, "numpy" | "none") {
        return Err(layer.malformed(&format!("auto_broadcast '{broadcast}' is not supported")));
    }
    let op = match layer.kind.as_str() {
        "Multiply" => "Mul",
        "Subtract" => "Sub",
        "Divide" => "Div",
        "Power" => "Pow",
        "Maximum" => "Max",
        "Minimum" => "Min",
        other => other,
    };
    b.node(op, &layer.name, names(inputs), outputs.to_vec(), vec![]);
    Ok(())
}

fn write(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let kind = match n.op {
        "Add" => "Add",
        "Mul" => "Multiply",
        "Sub" => "Subtract",
        _ => "Divide",
    };
    let b = n
        .input(1)
        .ok_or_else(|| unwritable(&format!("{} '{}' has one input", n.op, n.name)))?;
    let rank = n.rank.max(w.rank(&b));
    let ports = [w.source(n.first()?)?, w.source(&b)?];
    single(
        w,
        &n.name,
        kind,
        &[("auto_broadcast", "numpy".into())],
        &ports,
        &n.output,
    );
    w.set_rank(&n.output, rank);
    Ok(())
}
