//! Convolutions, pooling and matrix products.

use aquant_onnx::AttributeProto;

use super::{constant, int, ints, string};
use crate::consts::Constant;
use crate::graph::{Builder, Input};
use crate::xml::Layer;
use crate::IrError;

/// The ONNX `auto_pad` of an IR one, or none for explicit pads.
fn auto_pad(layer: &Layer) -> Result<Option<&'static str>, IrError> {
    Ok(
        match layer
            .data
            .get("auto_pad")
            .map_or("explicit", String::as_str)
        {
            "explicit" | "notset" => None,
            "valid" => Some("VALID"),
            "same_upper" => Some("SAME_UPPER"),
            "same_lower" => Some("SAME_LOWER"),
            other => return Err(layer.malformed(&format!("auto_pad '{other}' is not supported"))),
        },
    )
}

/// Strides, dilations (when the op has them) and padding.
fn window(layer: &Layer, dilations: bool) -> Result<Vec<AttributeProto>, IrError> {
    let mut attrs = vec![ints("strides", &layer.ints("strides")?)];
    if dilations {
        attrs.push(ints("dilations", &layer.ints("dilations")?));
    }
    match auto_pad(layer)? {
        Some(mode) => attrs.push(string("auto_pad", mode)),
        None => {
            let mut pads = layer.ints("pads_begin")?;
            pads.extend(layer.ints("pads_end")?);
            attrs.push(ints("pads", &pads));
        }
    }
    Ok(attrs)
}

/// Convolution → Conv; GroupConvolution's `[G, O/G, I/G, k…]` weights become Conv's `[O, I/G, k…]` with
/// `group = G` (the constant is reshaped, so aquant still sees a weight initializer to quantize).
pub fn convolution(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if inputs.len() != 2 {
        return Err(layer.malformed("a convolution has two inputs"));
    }
    let mut attrs = window(layer, true)?;
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

/// MaxPool (opset 1 and 8: the indices output must be unused) and AvgPool.
pub fn pool(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let mut attrs = window(
        layer,
        layer.kind == "MaxPool" && layer.data.contains_key("dilations"),
    )?;
    attrs.push(ints("kernel_shape", &layer.ints("kernel")?));
    let ceil = layer
        .data
        .get("rounding_type")
        .is_some_and(|r| r.eq_ignore_ascii_case("ceil"));
    attrs.push(int("ceil_mode", i64::from(ceil)));
    let op = if layer.kind == "MaxPool" {
        "MaxPool"
    } else {
        attrs.push(int(
            "count_include_pad",
            i64::from(!layer.flag("exclude-pad", false)?),
        ));
        "AveragePool"
    };
    b.node(
        op,
        &layer.name,
        vec![inputs[0].name.clone()],
        vec![outputs[0].clone()],
        attrs,
    );
    Ok(())
}

/// MatMul with `transpose_a`/`transpose_b`: a transposed 2-D constant is stored transposed (a weight
/// initializer aquant quantizes, as ONNX exporters write it); a computed operand gets a Transpose of its last
/// two axes.
pub fn matmul(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if inputs.len() != 2 {
        return Err(layer.malformed("a MatMul has two inputs"));
    }
    let mut operands = Vec::new();
    for (input, key) in inputs.iter().zip(["transpose_a", "transpose_b"]) {
        if !layer.flag(key, false)? {
            operands.push(input.name.clone());
            continue;
        }
        if let Some(c) = b
            .constant(&input.name)
            .filter(|c| c.dims.len() == 2)
            .cloned()
        {
            operands.push(b.add_constant(&format!("{}/transposed", input.name), transposed(&c)));
            continue;
        }
        let rank = input.dims.len();
        if rank < 2 {
            return Err(layer.malformed(&format!("{key} of a rank-{rank} operand")));
        }
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.swap(rank - 2, rank - 1);
        let out = b.fresh(&format!("{}/{key}", layer.name));
        b.node(
            "Transpose",
            &format!("{}/{key}", layer.name),
            vec![input.name.clone()],
            vec![out.clone()],
            vec![ints("perm", &perm)],
        );
        operands.push(out);
    }
    b.node("MatMul", &layer.name, operands, outputs.to_vec(), vec![]);
    Ok(())
}

fn transposed(c: &Constant) -> Constant {
    let (rows, cols) = (c.dims[0], c.dims[1]);
    let size = c.element.size();
    let mut bytes = vec![0; c.bytes.len()];
    for r in 0..rows {
        for k in 0..cols {
            let from = (r * cols + k) * size;
            let to = (k * rows + r) * size;
            bytes[to..to + size].copy_from_slice(&c.bytes[from..from + size]);
        }
    }
    Constant {
        element: c.element,
        dims: vec![cols, rows],
        bytes,
    }
}
