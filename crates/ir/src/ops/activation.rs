//! Activations: IR ReLU (or Relu), Sigmoid, Tanh, Exp, Sqrt, Erf, Abs, Negative, Floor and Log ↔ the ONNX ops of
//! the same name (Relu, Neg), IR Clamp ↔ ONNX Clip, IR Softmax ↔ ONNX Softmax. Clamp's limits are attributes in
//! the IR and inputs in ONNX: read as scalar constants; written from constant inputs, an absent one as the f32
//! extreme. Only the activations of the models aquant quantizes (Relu … Erf) are written.

use aquant_onnx::{attr, tensor};

use super::{arity, int, names, Family, OnnxNode};
use crate::consts::Constant;
use crate::graph::{Builder, Input};
use crate::write::{single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[
        ("ReLU", read_unary),
        ("Relu", read_unary),
        ("Sigmoid", read_unary),
        ("Tanh", read_unary),
        ("Exp", read_unary),
        ("Sqrt", read_unary),
        ("Erf", read_unary),
        ("Abs", read_unary),
        ("Negative", read_unary),
        ("Floor", read_unary),
        ("Log", read_unary),
        ("Clamp", read_clamp),
        ("Softmax", read_softmax),
    ],
    writes: &[
        ("Relu", write_unary),
        ("Sigmoid", write_unary),
        ("Tanh", write_unary),
        ("Exp", write_unary),
        ("Sqrt", write_unary),
        ("Erf", write_unary),
        ("Clip", write_clip),
        ("Softmax", write_softmax),
    ],
};

fn read_unary(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 1)?;
    let op = match layer.kind.as_str() {
        "ReLU" => "Relu",
        "Negative" => "Neg",
        other => other,
    };
    b.node(op, &layer.name, names(inputs), outputs.to_vec(), vec![]);
    Ok(())
}

fn write_unary(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let kind = match n.op {
        "Relu" => "ReLU",
        "Sigmoid" => "Sigmoid",
        "Tanh" => "Tanh",
        "Exp" => "Exp",
        "Sqrt" => "Sqrt",
        _ => "Erf",
    };
    let port = w.source(n.first()?)?;
    single(w, &n.name, kind, &[], &[port], &n.output);
    w.set_rank(&n.output, n.rank);
    Ok(())
}

fn read_clamp(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    arity(layer, inputs, 1)?;
    let name = layer.name.as_str();
    let min = b.add_constant(
        &format!("{name}/min"),
        Constant::f32s(&[], &[layer.float("min")?]),
    );
    let max = b.add_constant(
        &format!("{name}/max"),
        Constant::f32s(&[], &[layer.float("max")?]),
    );
    b.node(
        "Clip",
        name,
        vec![inputs[0].name.clone(), min, max],
        outputs.to_vec(),
        vec![],
    );
    Ok(())
}

fn write_clip(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let name = &n.name;
    let bound = |w: &Writer, i: usize, default: f32| -> Result<f32, IrError> {
        match n.input(i) {
            None => Ok(default),
            Some(b) => w
                .constant(&b)
                .and_then(|t| tensor::to_f32(t).ok())
                .and_then(|v| v.first().copied())
                .ok_or_else(|| {
                    unwritable(&format!("Clip '{name}' has a bound that is not a constant"))
                }),
        }
    };
    let (min, max) = (bound(w, 1, f32::MIN)?, bound(w, 2, f32::MAX)?);
    let port = w.source(n.first()?)?;
    single(
        w,
        name,
        "Clamp",
        &[("min", min.to_string()), ("max", max.to_string())],
        &[port],
        &n.output,
    );
    w.set_rank(&n.output, n.rank);
    Ok(())
}

fn read_softmax(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    b.node(
        "Softmax",
        &layer.name,
        names(inputs),
        outputs.to_vec(),
        vec![int("axis", layer.int("axis")?)],
    );
    Ok(())
}

fn write_softmax(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let axis = attr::int(n.node, "axis").unwrap_or(-1);
    let port = w.source(n.first()?)?;
    single(
        w,
        &n.name,
        "Softmax",
        &[("axis", axis.to_string())],
        &[port],
        &n.output,
    );
    w.set_rank(&n.output, n.rank);
    Ok(())
}
