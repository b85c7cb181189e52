//! Quantization in NNCF's IR form: ONNX QuantizeLinear → DequantizeLinear pairs on activations as
//! FakeQuantize, dequantized initializers as int8 Const → Convert → (Subtract) → Multiply. Write only: the
//! reader takes FP32 IRs (a FakeQuantize is an unknown op to it).
//!
//! A QuantizeLinear writes nothing itself: it is kept until the DequantizeLinear that closes the pair writes
//! the FakeQuantize, and one feeding anything else is refused. A DequantizeLinear of an initializer is kept
//! too and written where it is first read ([`stored`], [`crate::write::Writer::source`]), because a grouped
//! convolution or a bias reads it in another shape.

use aquant_onnx::proto::tensor_proto::DataType;
use aquant_onnx::{attr, tensor, NodeProto};

use super::{Family, OnnxNode};
use crate::write::tensor::{onnx_error, tensor_bytes};
use crate::write::{f32_const, single, unwritable, Port, Writer};
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[],
    writes: &[
        ("QuantizeLinear", write_quantize),
        ("DequantizeLinear", write_dequantize),
    ],
};

/// Keeps a QuantizeLinear for the DequantizeLinear that closes its pair; refused when it feeds anything else.
fn write_quantize<'g>(w: &mut Writer<'g>, n: &OnnxNode<'g>) -> Result<(), IrError> {
    if let Some(other) = w
        .consumers(&n.output)
        .iter()
        .find(|c| c.op_type.as_deref() != Some("DequantizeLinear"))
    {
        return Err(unwritable(&format!(
            "QuantizeLinear '{}' feeds {} '{}': only QDQ pairs are written",
            n.name,
            other.op_type.as_deref().unwrap_or_default(),
            other.name.as_deref().unwrap_or_default()
        )));
    }
    w.quantized.insert(n.output.clone(), n.node);
    Ok(())
}

/// The DequantizeLinear closing a QDQ pair → FakeQuantize; one of an initializer is kept until first read.
fn write_dequantize<'g>(w: &mut Writer<'g>, n: &OnnxNode<'g>) -> Result<(), IrError> {
    if let Some(pair) = w.quantized.get(n.first()?).copied() {
        fake_quantize(w, pair, n.node, &n.name, &n.output)?;
        w.set_rank(
            &n.output,
            w.rank(pair.input.first().map_or("", String::as_str)),
        );
    } else if w.constant(n.first()?).is_some() {
        w.pending.insert(n.output.clone(), n.node);
    } else {
        return Err(unwritable(&format!(
            "DequantizeLinear '{}' reads neither a QuantizeLinear nor an initializer",
            n.name
        )));
    }
    Ok(())
}

/// A per-tensor or per-channel quantity `values` shaped to broadcast along `axis` of a rank-`rank` tensor.
fn broadcast_dims(len: usize, axis: usize, rank: usize) -> Vec<usize> {
    if len == 1 {
        return vec![];
    }
    (0..rank).map(|i| if i == axis { len } else { 1 }).collect()
}

/// The quantization parameters of a QuantizeLinear or DequantizeLinear node.
struct Parameters {
    /// Scales (one, or one per channel).
    scales: Vec<f32>,
    /// Zero points, as many as scales.
    zeros: Vec<i64>,
    /// The integer range of the zero point's type.
    range: (i64, i64),
    /// The channel axis.
    axis: i64,
}

/// The [`Parameters`] of `node`, read from its constant inputs.
fn parameters(w: &Writer, node: &NodeProto) -> Result<Parameters, IrError> {
    let name = node.name.as_deref().unwrap_or_default();
    let constant = |i: usize| {
        node.input
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|n| w.constant(n))
    };
    let scale =
        constant(1).ok_or_else(|| unwritable(&format!("'{name}': the scale is not a constant")))?;
    let scales = tensor::to_f32(scale).map_err(onnx_error)?;
    let (zeros, range) = match constant(2) {
        None => (vec![0; scales.len()], (0, 255)),
        Some(zp) => {
            let range = match zp.data_type {
                Some(t) if t == DataType::Int8 as i32 => (-128, 127),
                Some(t) if t == DataType::Uint8 as i32 => (0, 255),
                Some(t) if t == DataType::Int32 as i32 => (i32::MIN as i64, i32::MAX as i64),
                _ => {
                    return Err(unwritable(&format!(
                        "'{name}': zero points must be int8, uint8 or int32"
                    )))
                }
            };
            (tensor::to_i64(zp).map_err(onnx_error)?, range)
        }
    };
    if zeros.len() != scales.len() {
        return Err(unwritable(&format!(
            "'{name}': scales and zero points differ in length"
        )));
    }
    Ok(Parameters {
        scales,
        zeros,
        range,
        axis: attr::int(node, "axis").unwrap_or(1),
    })
}

/// QuantizeLinear → DequantizeLinear on an activation → FakeQuantize with levels 256 and the limits the pair
/// represents: (q_min − z)·s … (q_max − z)·s, per tensor or per channel.
fn fake_quantize(
    w: &mut Writer,
    quantize: &NodeProto,
    dequantize: &NodeProto,
    name: &str,
    output: &str,
) -> Result<(), IrError> {
    let Parameters {
        scales,
        zeros,
        range: (low, high),
        axis,
    } = parameters(w, dequantize)?;
    if high - low != 255 {
        return Err(unwritable(&format!(
            "'{name}': only 8-bit activations are written as FakeQuantize"
        )));
    }
    let x = quantize.input.first().cloned().unwrap_or_default();
    let rank = w.rank(&x);
    let dims = match (scales.len(), rank) {
        (1, _) => vec![],
        (len, Some(rank)) => broadcast_dims(len, axis.rem_euclid(rank as i64) as usize, rank),
        (_, None) => {
            return Err(unwritable(&format!(
                "'{name}': per-channel activation of unknown rank"
            )))
        }
    };
    let lows: Vec<f32> = scales
        .iter()
        .zip(&zeros)
        .map(|(&s, &z)| (low - z) as f32 * s)
        .collect();
    let highs: Vec<f32> = scales
        .iter()
        .zip(&zeros)
        .map(|(&s, &z)| (high - z) as f32 * s)
        .collect();
    let input = w.source(&x)?;
    let ports = [
        input,
        f32_const(w, &format!("{name}/input_low"), &dims, &lows),
        f32_const(w, &format!("{name}/input_high"), &dims, &highs),
        f32_const(w, &format!("{name}/output_low"), &dims, &lows),
        f32_const(w, &format!("{name}/output_high"), &dims, &highs),
    ];
    single(
        w,
        name,
        "FakeQuantize",
        &[("levels", "256".into()), ("auto_broadcast", "numpy".into())],
        &ports,
        output,
    );
    Ok(())
}

/// A dequantized initializer as NNCF writes weights: integer Const → Convert → (Subtract zero point) →
/// Multiply scale, optionally stored in the shape `dims` (a grouped convolution's 5-D weights, a bias as
/// `[1, C, 1, 1]`).
pub fn dequantized(
    w: &mut Writer,
    node: &NodeProto,
    dims: Option<&[usize]>,
) -> Result<Port, IrError> {
    let name = node.name.clone().unwrap_or_default();
    let source = node.input.first().cloned().unwrap_or_default();
    let tensor = w
        .constant(&source)
        .cloned()
        .ok_or_else(|| unwritable(&format!("'{name}' reads no initializer")))?;
    let (element, original, bytes) = tensor_bytes(&tensor)?;
    let Parameters {
        scales,
        zeros,
        axis,
        ..
    } = parameters(w, node)?;
    let target = dims.map_or_else(|| original.clone(), <[usize]>::to_vec);
    if target.iter().product::<usize>() != original.iter().product::<usize>() {
        return Err(unwritable(&format!(
            "'{name}': cannot store {original:?} as {target:?}"
        )));
    }
    let scale_dims = scale_dims(scales.len(), axis, &original, &target);
    let weights = w.const_layer(&source, element, &target, &bytes);
    let output = node.output.first().cloned().unwrap_or_default();
    let convert = w.layer(
        &format!("{output}/convert"),
        "Convert",
        &[("destination_type", "f32".into())],
        &[weights],
        &[("FP32", None)],
    );
    let mut value = w.port(convert, 0);
    if zeros.iter().any(|&z| z != 0) {
        value = subtract_zero_point(w, &output, element, &zeros, &scale_dims, value);
    }
    let scale = f32_const(w, &format!("{output}/scale"), &scale_dims, &scales);
    let multiply = w.layer(
        &output,
        "Multiply",
        &[("auto_broadcast", "numpy".into())],
        &[value, scale],
        &[("FP32", Some(output.clone()))],
    );
    Ok(w.port(multiply, 0))
}

/// The shape of the scales (and zero points) of a weight of shape `original` stored as `target`: none for one
/// scale; stored as is, broadcast along the channel `axis`; stored reshaped, the target shape itself when it
/// has one scale per element, else `[target[0], scales / target[0], 1…]` (a grouped convolution's weights).
fn scale_dims(scales: usize, axis: i64, original: &[usize], target: &[usize]) -> Vec<usize> {
    if scales == 1 {
        vec![]
    } else if target == original {
        broadcast_dims(
            scales,
            axis.rem_euclid(original.len().max(1) as i64) as usize,
            original.len(),
        )
    } else if target.iter().product::<usize>() == scales {
        target.to_vec()
    } else {
        let mut d = vec![1; target.len()];
        d[0] = target[0];
        d[1] = scales / target[0].max(1);
        d
    }
}

/// `value` − the `zeros` (a Const of `element` shaped `dims`, converted to f32), as NNCF writes a zero point.
fn subtract_zero_point(
    w: &mut Writer,
    output: &str,
    element: &'static str,
    zeros: &[i64],
    dims: &[usize],
    value: Port,
) -> Port {
    let zero_bytes: Vec<u8> = match element {
        "i8" | "u8" => zeros.iter().map(|&z| z as u8).collect(),
        _ => zeros
            .iter()
            .flat_map(|&z| (z as i32).to_le_bytes())
            .collect(),
    };
    let zp = w.const_layer(&format!("{output}/zero_point"), element, dims, &zero_bytes);
    let zp_convert = w.layer(
        &format!("{output}/zero_point/convert"),
        "Convert",
        &[("destination_type", "f32".into())],
        &[zp],
        &[("FP32", None)],
    );
    let zp = w.port(zp_convert, 0);
    let sub = w.layer(
        &format!("{output}/subtract"),
        "Subtract",
        &[("auto_broadcast", "numpy".into())],
        &[value, zp],
        &[("FP32", None)],
    );
    w.port(sub, 0)
}

/// A weight or bias input stored in shape `dims`: a dequantized initializer, or an FP32 initializer (a
/// reverted op keeps its original weights), reshaped at write time.
pub fn stored(w: &mut Writer, name: &str, dims: &[usize]) -> Result<Port, IrError> {
    if let Some(node) = w.pending.get(name).copied() {
        return dequantized(w, node, Some(dims));
    }
    let tensor = w
        .constant(name)
        .cloned()
        .ok_or_else(|| unwritable(&format!("weights '{name}' are computed")))?;
    let (element, original, bytes) = tensor_bytes(&tensor)?;
    if original.iter().product::<usize>() != dims.iter().product::<usize>() {
        return Err(unwritable(&format!(
            "'{name}': cannot store {original:?} as {dims:?}"
        )));
    }
    Ok(w.const_layer(name, element, dims, &bytes))
}

/// The dimensions of weight tensor `name` (through its DequantizeLinear).
pub fn weight_dims(w: &Writer, name: &str) -> Result<Vec<usize>, IrError> {
    let source = w
        .pending
        .get(name)
        .and_then(|n| n.input.first())
        .map_or(name, String::as_str);
    let tensor = w
        .constant(source)
        .ok_or_else(|| unwritable(&format!("weights '{name}' are computed")))?;
    tensor::dims(tensor).map_err(onnx_error)
}
