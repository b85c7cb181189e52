//! Convolutions: IR Convolution and GroupConvolution ↔ ONNX Conv. The IR stores a grouped convolution's
//! weights `[G, O/G, I/G, k…]` and keeps the bias apart, as an Add of a `[1, C, 1…]` constant after the
//! convolution; ONNX has one Conv with `group = G`, weights `[O, I/G, k…]` and an optional bias input. Reading
//! reshapes the weight constant (the bias Add is folded into the Conv once the graph is read, see `graph`);
//! writing stores the weights in the IR's shape and splits the bias off again, under the names OpenVINO gives
//! the two (`…/WithoutBiases` and the Conv's own).

use aquant_onnx::attr;

use super::quantize::{stored, weight_dims};
use super::{constant, int, window, Family, OnnxNode};
use crate::consts::Constant;
use crate::graph::{Builder, Input};
use crate::write::{single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[("Convolution", read), ("GroupConvolution", read)],
    writes: &[("Conv", write)],
};

/// Convolution → Conv; GroupConvolution's `[G, O/G, I/G, k…]` weights become Conv's `[O, I/G, k…]` with
/// `group = G` (the constant is reshaped, so aquant still sees a weight initializer to quantize).
fn read(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if inputs.len() != 2 {
        return Err(layer.malformed("a convolution has two inputs"));
    }
    let mut attrs = window::read(layer, true)?;
    let mut weights = inputs[1].name.clone();
    if layer.kind == "GroupConvolution" {
        let constant = constant(layer, b, &inputs[1], "weights")?.clone();
        let [groups, per_group, rest @ ..] = constant.dims.as_slice() else {
            return Err(layer.malformed("grouped weights need at least two dimensions"));
        };
        let mut dims = vec![groups * per_group];
        dims.extend_from_slice(rest);
        attrs.push(int("group", *groups as i64));
        weights = b.add_constant(&inputs[1].name, Constant { dims, ..constant });
    }
    b.node(
        "Conv",
        &layer.name,
        vec![inputs[0].name.clone(), weights],
        outputs.to_vec(),
        attrs,
    );
    Ok(())
}

/// Conv → Convolution, or GroupConvolution with weights stored `[G, O/G, I/G, k…]`; a bias → Add of `[1, C, 1…]`.
fn write(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let (node, name, output) = (n.node, n.name.as_str(), n.output.as_str());
    let x = node.input[0].clone();
    let weights = node
        .input
        .get(1)
        .cloned()
        .ok_or_else(|| unwritable(&format!("Conv '{name}' has no weights")))?;
    let dims = weight_dims(w, &weights)?;
    if dims.len() < 3 {
        return Err(unwritable(&format!(
            "Conv '{name}': weights of rank {}",
            dims.len()
        )));
    }
    let groups = attr::int(node, "group").unwrap_or(1).max(1) as usize;
    let data = window::write(node, dims.len() - 2, true)?;
    let input = w.source(&x)?;
    let (kind, weight_port) = if groups == 1 {
        ("Convolution", stored(w, &weights, &dims)?)
    } else {
        let mut grouped = vec![groups, dims[0] / groups];
        grouped.extend_from_slice(&dims[1..]);
        ("GroupConvolution", stored(w, &weights, &grouped)?)
    };
    let bias = node.input.get(2).filter(|b| !b.is_empty()).cloned();
    let conv_out = if bias.is_some() {
        format!("{name}/WithoutBiases")
    } else {
        output.to_owned()
    };
    let id = w.layer(
        if bias.is_some() { &conv_out } else { name },
        kind,
        &data,
        &[input, weight_port],
        &[("FP32", Some(conv_out.clone()))],
    );
    w.define(&conv_out, id, 0);
    if let Some(bias) = bias {
        let mut shape = vec![1; dims.len()];
        shape[1] = dims[0];
        let bias_port = stored(w, &bias, &shape)?;
        let conv_port = w.source(&conv_out)?;
        single(
            w,
            name,
            "Add",
            &[("auto_broadcast", "numpy".into())],
            &[conv_port, bias_port],
            output,
        );
    }
    w.set_rank(output, Some(dims.len()));
    Ok(())
}
