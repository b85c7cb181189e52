//! ONNX nodes to IR layers: QDQ pairs to FakeQuantize, dequantized initializers to NNCF's weight chain, and
//! the ops of the models aquant quantizes.

use aquant_onnx::{attr, tensor, NodeProto, TensorProto};

use super::qdq::{fake_quantize, stored, weight_dims};
use super::{i64_const, single, unwritable, Writer};
use crate::IrError;

fn ints_text(values: &[i64]) -> String {
    values
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts one node.
pub fn convert<'g>(w: &mut Writer<'g>, node: &'g NodeProto) -> Result<(), IrError> {
    let op = node.op_type.as_deref().unwrap_or_default();
    let name = node
        .name
        .clone()
        .unwrap_or_else(|| node.output.first().cloned().unwrap_or_default());
    let output = node
        .output
        .first()
        .cloned()
        .ok_or_else(|| unwritable(&format!("node '{name}' has no output")))?;
    let input = |i: usize| node.input.get(i).filter(|s| !s.is_empty()).cloned();
    let first = input(0).ok_or_else(|| unwritable(&format!("node '{name}' has no input")))?;
    let rank = w.rank(&first);
    match op {
        "Constant" => {
            let value = node
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("value"))
                .and_then(|a| a.t.clone())
                .ok_or_else(|| unwritable(&format!("Constant '{name}' has no tensor value")))?;
            w.define_constant(
                &output,
                TensorProto {
                    name: Some(output.clone()),
                    ..value
                },
            );
            return Ok(());
        }
        "QuantizeLinear" => {
            if let Some(other) = w
                .consumers(&output)
                .iter()
                .find(|c| c.op_type.as_deref() != Some("DequantizeLinear"))
            {
                return Err(unwritable(&format!(
                    "QuantizeLinear '{name}' feeds {} '{}': only QDQ pairs are written",
                    other.op_type.as_deref().unwrap_or_default(),
                    other.name.as_deref().unwrap_or_default()
                )));
            }
            w.quantized.insert(output, node);
        }
        "DequantizeLinear" => {
            if let Some(pair) = w.quantized.get(&first).copied() {
                fake_quantize(w, pair, node, &name, &output)?;
                w.set_rank(
                    &output,
                    w.rank(pair.input.first().map_or("", String::as_str)),
                );
            } else if w.constant(&first).is_some() {
                w.pending.insert(output, node);
            } else {
                return Err(unwritable(&format!(
                    "DequantizeLinear '{name}' reads neither a QuantizeLinear nor an initializer"
                )));
            }
        }
        "Conv" => conv(w, node, &name, &output)?,
        "Gemm" | "MatMul" => matmul(w, node, &name, &output)?,
        "Add" | "Mul" | "Sub" | "Div" => {
            let kind = match op {
                "Add" => "Add",
                "Mul" => "Multiply",
                "Sub" => "Subtract",
                _ => "Divide",
            };
            let b = input(1).ok_or_else(|| unwritable(&format!("{op} '{name}' has one input")))?;
            let rank = rank.max(w.rank(&b));
            let ports = [w.source(&first)?, w.source(&b)?];
            single(
                w,
                &name,
                kind,
                &[("auto_broadcast", "numpy".into())],
                &ports,
                &output,
            );
            w.set_rank(&output, rank);
        }
        "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Erf" => {
            let kind = match op {
                "Relu" => "ReLU",
                "Sigmoid" => "Sigmoid",
                "Tanh" => "Tanh",
                "Exp" => "Exp",
                "Sqrt" => "Sqrt",
                _ => "Erf",
            };
            let port = w.source(&first)?;
            single(w, &name, kind, &[], &[port], &output);
            w.set_rank(&output, rank);
        }
        "Clip" => {
            let bound = |w: &Writer, i: usize, default: f32| -> Result<f32, IrError> {
                match input(i) {
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
            let port = w.source(&first)?;
            single(
                w,
                &name,
                "Clamp",
                &[("min", min.to_string()), ("max", max.to_string())],
                &[port],
                &output,
            );
            w.set_rank(&output, rank);
        }
        "GlobalAveragePool" => {
            let rank = rank.ok_or_else(|| {
                unwritable(&format!(
                    "GlobalAveragePool '{name}': the input's rank is unknown"
                ))
            })?;
            let port = w.source(&first)?;
            let axes = i64_const(
                w,
                &format!("{name}/axes"),
                &(2..rank as i64).collect::<Vec<_>>(),
            );
            single(
                w,
                &name,
                "ReduceMean",
                &[("keep_dims", "true".into())],
                &[port, axes],
                &output,
            );
            w.set_rank(&output, Some(rank));
        }
        "Flatten" => {
            if attr::int(node, "axis").unwrap_or(1) != 1 {
                return Err(unwritable(&format!(
                    "Flatten '{name}' on an axis other than 1"
                )));
            }
            let port = w.source(&first)?;
            let shape = i64_const(w, &format!("{name}/shape"), &[0, -1]);
            single(
                w,
                &name,
                "Reshape",
                &[("special_zero", "true".into())],
                &[port, shape],
                &output,
            );
            w.set_rank(&output, Some(2));
        }
        "Reshape" => {
            let shape =
                input(1).ok_or_else(|| unwritable(&format!("Reshape '{name}' has no shape")))?;
            let special_zero = attr::int(node, "allowzero").unwrap_or(0) == 0;
            let out_rank = w
                .constant(&shape)
                .map(|t| t.dims.first().copied().unwrap_or(0) as usize);
            let ports = [w.source(&first)?, w.source(&shape)?];
            single(
                w,
                &name,
                "Reshape",
                &[("special_zero", special_zero.to_string())],
                &ports,
                &output,
            );
            w.set_rank(&output, out_rank);
        }
        "MaxPool" | "AveragePool" => pool(w, node, &name, &output)?,
        "ReduceMean" | "ReduceMax" => {
            let axes = match (attr::ints(node, "axes"), input(1)) {
                (Some(axes), _) => axes,
                (None, Some(axes)) => w
                    .constant(&axes)
                    .and_then(|t| tensor::to_i64(t).ok())
                    .ok_or_else(|| {
                        unwritable(&format!("{op} '{name}': axes are not a constant"))
                    })?,
                (None, None) => return Err(unwritable(&format!("{op} '{name}' over all axes"))),
            };
            let keep = attr::int(node, "keepdims").unwrap_or(1) != 0;
            let port = w.source(&first)?;
            let axes = i64_const(w, &format!("{name}/axes"), &axes);
            let kind = if op == "ReduceMean" {
                "ReduceMean"
            } else {
                "ReduceMax"
            };
            single(
                w,
                &name,
                kind,
                &[("keep_dims", keep.to_string())],
                &[port, axes],
                &output,
            );
            w.set_rank(&output, if keep { rank } else { None });
        }
        "Concat" => {
            let ports = node
                .input
                .iter()
                .map(|i| w.source(i))
                .collect::<Result<Vec<_>, _>>()?;
            let axis = attr::int(node, "axis").unwrap_or(0);
            single(
                w,
                &name,
                "Concat",
                &[("axis", axis.to_string())],
                &ports,
                &output,
            );
            w.set_rank(&output, rank);
        }
        "Transpose" => {
            let perm = attr::ints(node, "perm")
                .ok_or_else(|| unwritable(&format!("Transpose '{name}' without perm")))?;
            let port = w.source(&first)?;
            let order = i64_const(w, &format!("{name}/order"), &perm);
            single(w, &name, "Transpose", &[], &[port, order], &output);
            w.set_rank(&output, rank);
        }
        "Softmax" => {
            let axis = attr::int(node, "axis").unwrap_or(-1);
            let port = w.source(&first)?;
            single(
                w,
                &name,
                "Softmax",
                &[("axis", axis.to_string())],
                &[port],
                &output,
            );
            w.set_rank(&output, rank);
        }
        other => {
            return Err(unwritable(&format!(
                "ONNX op '{other}' (node '{name}') has no IR form here"
            )))
        }
    }
    Ok(())
}

fn window(
    node: &NodeProto,
    spatial: usize,
    dilations: bool,
) -> Result<Vec<(&'static str, String)>, IrError> {
    let ones = vec![1; spatial];
    let mut data = vec![(
        "strides",
        ints_text(&attr::ints(node, "strides").unwrap_or_else(|| ones.clone())),
    )];
    if dilations {
        data.push((
            "dilations",
            ints_text(&attr::ints(node, "dilations").unwrap_or_else(|| ones.clone())),
        ));
    }
    let pads = attr::ints(node, "pads").unwrap_or_else(|| vec![0; 2 * spatial]);
    if pads.len() != 2 * spatial {
        return Err(unwritable("pads do not match the kernel"));
    }
    data.push(("pads_begin", ints_text(&pads[..spatial])));
    data.push(("pads_end", ints_text(&pads[spatial..])));
    let auto = match attr::string(node, "auto_pad")
        .as_deref()
        .unwrap_or("NOTSET")
    {
        "NOTSET" => "explicit",
        "VALID" => "valid",
        "SAME_UPPER" => "same_upper",
        "SAME_LOWER" => "same_lower",
        other => return Err(unwritable(&format!("auto_pad '{other}'"))),
    };
    data.push(("auto_pad", auto.into()));
    Ok(data)
}

/// Conv → Convolution, or GroupConvolution with weights stored `[G, O/G, I/G, k…]`; a bias → Add of `[1, C, 1…]`.
fn conv(w: &mut Writer, node: &NodeProto, name: &str, output: &str) -> Result<(), IrError> {
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
    let data = window(node, dims.len() - 2, true)?;
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

/// Gemm (alpha = beta = 1) and MatMul → MatMul with its transposes, then Add of Gemm's C.
fn matmul(w: &mut Writer, node: &NodeProto, name: &str, output: &str) -> Result<(), IrError> {
    let gemm = node.op_type.as_deref() == Some("Gemm");
    if gemm
        && (attr::float(node, "alpha").unwrap_or(1.0) != 1.0
            || attr::float(node, "beta").unwrap_or(1.0) != 1.0)
    {
        return Err(unwritable(&format!(
            "Gemm '{name}' with alpha or beta other than 1"
        )));
    }
    let [a, b] = [0, 1].map(|i| node.input.get(i).cloned().unwrap_or_default());
    let rank = w.rank(&a);
    let ports = [w.source(&a)?, w.source(&b)?];
    let data = [
        (
            "transpose_a",
            (attr::int(node, "transA").unwrap_or(0) != 0).to_string(),
        ),
        (
            "transpose_b",
            (attr::int(node, "transB").unwrap_or(0) != 0).to_string(),
        ),
    ];
    let bias = node.input.get(2).filter(|c| gemm && !c.is_empty()).cloned();
    let mm_out = if bias.is_some() {
        format!("{name}/WithoutBiases")
    } else {
        output.to_owned()
    };
    let id = w.layer(
        if bias.is_some() { &mm_out } else { name },
        "MatMul",
        &data,
        &ports,
        &[("FP32", Some(mm_out.clone()))],
    );
    w.define(&mm_out, id, 0);
    if let Some(c) = bias {
        let ports = [w.source(&mm_out)?, w.source(&c)?];
        single(
            w,
            name,
            "Add",
            &[("auto_broadcast", "numpy".into())],
            &ports,
            output,
        );
    }
    w.set_rank(output, if gemm { Some(2) } else { rank });
    Ok(())
}

/// MaxPool → MaxPool (opset 8, indices unused), AveragePool → AvgPool.
fn pool(w: &mut Writer, node: &NodeProto, name: &str, output: &str) -> Result<(), IrError> {
    let kernel = attr::ints(node, "kernel_shape")
        .ok_or_else(|| unwritable(&format!("pool '{name}' has no kernel_shape")))?;
    let max = node.op_type.as_deref() == Some("MaxPool");
    if max && node.output.len() > 1 {
        return Err(unwritable(&format!("MaxPool '{name}' with indices")));
    }
    let mut data = window(node, kernel.len(), max)?;
    data.push(("kernel", ints_text(&kernel)));
    let ceil = attr::int(node, "ceil_mode").unwrap_or(0) != 0;
    data.push(("rounding_type", if ceil { "ceil" } else { "floor" }.into()));
    let port = w.source(&node.input[0])?;
    let rank = w.rank(&node.input[0]);
    if max {
        data.push(("index_element_type", "i64".into()));
        data.push(("axis", "0".into()));
        let id = w.layer(
            name,
            "MaxPool",
            &data,
            &[port],
            &[("FP32", Some(output.to_owned())), ("I64", None)],
        );
        w.define(output, id, 0);
    } else {
        let exclude = attr::int(node, "count_include_pad").unwrap_or(0) == 0;
        data.push(("exclude-pad", exclude.to_string()));
        single(w, name, "AvgPool", &data, &[port], output);
    }
    w.set_rank(output, rank);
    Ok(())
}
