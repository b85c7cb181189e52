//! IR operations to ONNX nodes, one function per family. The set is the op set of the IRs OpenVINO makes from
//! common CNNs (the bundled models) and transformer encoders; any other op is one error naming it, never a
//! guess.

use aquant_onnx::proto::attribute_proto::AttributeType;
use aquant_onnx::AttributeProto;

use crate::consts::{Constant, Element};
use crate::graph::{Builder, Input};
use crate::xml::Layer;
use crate::IrError;

/// Converts one layer (neither Parameter, Result nor Const).
pub fn convert(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let name = layer.name.as_str();
    let arity = |n: usize| -> Result<(), IrError> {
        if inputs.len() == n {
            Ok(())
        } else {
            Err(layer.malformed(&format!("{} inputs, expected {n}", inputs.len())))
        }
    };
    match layer.kind.as_str() {
        "Add" | "Multiply" | "Subtract" | "Divide" | "Power" | "Maximum" | "Minimum" | "Equal"
        | "Less" | "Greater" => {
            arity(2)?;
            let broadcast = layer
                .data
                .get("auto_broadcast")
                .map_or("numpy", String::as_str);
            if !matches!(broadcast, "numpy" | "none") {
                return Err(
                    layer.malformed(&format!("auto_broadcast '{broadcast}' is not supported"))
                );
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
            b.node(op, name, names, outputs.to_vec(), vec![]);
        }
        "ReLU" | "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Erf" | "Abs" | "Negative"
        | "Floor" | "Log" => {
            arity(1)?;
            let op = match layer.kind.as_str() {
                "ReLU" => "Relu",
                "Negative" => "Neg",
                other => other,
            };
            b.node(op, name, names, outputs.to_vec(), vec![]);
        }
        "Clamp" => {
            arity(1)?;
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
                vec![names[0].clone(), min, max],
                outputs.to_vec(),
                vec![],
            );
        }
        "Convolution" | "GroupConvolution" => convolution(layer, inputs, outputs, b)?,
        "MaxPool" | "AvgPool" => pool(layer, inputs, outputs, b)?,
        "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceSum" => {
            arity(2)?;
            let axes = constant(layer, b, &inputs[1], "axes")?.ints();
            let keep = layer.flag("keep_dims", false)?;
            let mut attrs = vec![int("keepdims", i64::from(keep))];
            if layer.kind == "ReduceSum" {
                let axes = b.add_constant(&format!("{name}/axes"), Constant::i64s(&axes));
                b.node(
                    "ReduceSum",
                    name,
                    vec![names[0].clone(), axes],
                    outputs.to_vec(),
                    attrs,
                );
            } else {
                attrs.push(ints("axes", &axes));
                b.node(
                    &layer.kind,
                    name,
                    vec![names[0].clone()],
                    outputs.to_vec(),
                    attrs,
                );
            }
        }
        "Reshape" => {
            arity(2)?;
            let shape = as_i64(layer, b, &inputs[1])?;
            let allowzero = i64::from(!layer.flag("special_zero", false)?);
            let attrs = if allowzero == 1 {
                vec![int("allowzero", 1)]
            } else {
                vec![]
            };
            b.node(
                "Reshape",
                name,
                vec![names[0].clone(), shape],
                outputs.to_vec(),
                attrs,
            );
        }
        "Squeeze" | "Unsqueeze" => {
            let mut ins = vec![names[0].clone()];
            if let Some(axes) = inputs.get(1) {
                ins.push(as_i64(layer, b, axes)?);
            }
            b.node(&layer.kind, name, ins, outputs.to_vec(), vec![]);
        }
        "Concat" => b.node(
            "Concat",
            name,
            names,
            outputs.to_vec(),
            vec![int("axis", layer.int("axis")?)],
        ),
        "Transpose" => {
            arity(2)?;
            let order = constant(layer, b, &inputs[1], "order")?.ints();
            let attrs = if order.is_empty() {
                vec![]
            } else {
                vec![ints("perm", &order)]
            };
            b.node(
                "Transpose",
                name,
                vec![names[0].clone()],
                outputs.to_vec(),
                attrs,
            );
        }
        "Gather" => {
            arity(3)?;
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
                name,
                vec![names[0].clone(), indices],
                outputs.to_vec(),
                vec![int("axis", *axis)],
            );
        }
        "Softmax" => b.node(
            "Softmax",
            name,
            names,
            outputs.to_vec(),
            vec![int("axis", layer.int("axis")?)],
        ),
        "ShapeOf" => {
            let element = layer.data.get("output_type").map_or("i64", String::as_str);
            if element == "i64" {
                b.node("Shape", name, names, outputs.to_vec(), vec![]);
            } else {
                let shape = b.fresh(&format!("{name}/i64"));
                b.node("Shape", name, names, vec![shape.clone()], vec![]);
                cast(layer, b, shape, &outputs[0], element)?;
            }
        }
        "Convert" => {
            arity(1)?;
            let element = layer.attr("destination_type")?;
            let target = Element::parse(element).ok_or_else(|| {
                layer.malformed(&format!("destination type '{element}' is not supported"))
            })?;
            match b.constant(&names[0]).and_then(|c| c.converted(target)) {
                Some(folded) => b.define_constant(&outputs[0], folded),
                None => cast(layer, b, names[0].clone(), &outputs[0], element)?,
            }
        }
        "MatMul" => matmul(layer, inputs, outputs, b)?,
        "MVN" => mvn(layer, inputs, outputs, b)?,
        "Gelu" => gelu(layer, inputs, outputs, b)?,
        other => {
            return Err(IrError::UnknownOp {
                op: other.to_owned(),
                layer: layer.name.clone(),
            })
        }
    }
    Ok(())
}

fn int(name: &str, value: i64) -> AttributeProto {
    aquant_onnx::attr::make_int(name, value)
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The constant value of `input`, which the op needs at conversion time (`what` names it in the error).
fn constant<'b>(
    layer: &Layer,
    b: &'b Builder,
    input: &Input,
    what: &str,
) -> Result<&'b Constant, IrError> {
    b.constant(&input.name)
        .ok_or_else(|| layer.malformed(&format!("the {what} input is not a constant")))
}

/// `input` as an i64 tensor (ONNX shape, axes and index inputs are i64; the IR also allows i32).
fn as_i64(layer: &Layer, b: &mut Builder, input: &Input) -> Result<String, IrError> {
    match b.constant(&input.name) {
        Some(c) if c.element == Element::I64 => Ok(input.name.clone()),
        Some(c) => {
            let converted = c.converted(Element::I64).expect("i64 is not f16");
            Ok(b.add_constant(&format!("{}/i64", input.name), converted))
        }
        None => {
            let cast_to = b.fresh(&format!("{}/i64", input.name));
            cast(layer, b, input.name.clone(), &cast_to, "i64")?;
            Ok(cast_to)
        }
    }
}

/// A Cast of `from` to `to` as IR element type `element`.
fn cast(
    layer: &Layer,
    b: &mut Builder,
    from: String,
    to: &str,
    element: &str,
) -> Result<(), IrError> {
    let target = Element::parse(element)
        .ok_or_else(|| layer.malformed(&format!("element type '{element}' is not supported")))?;
    let name = format!("{}/cast", layer.name);
    b.node(
        "Cast",
        &name,
        vec![from],
        vec![to.to_owned()],
        vec![int("to", target.onnx() as i64)],
    );
    Ok(())
}

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
fn convolution(
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
fn pool(
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
fn matmul(
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

/// MVN over the last axis with the epsilon inside the square root (what OpenVINO makes of a LayerNorm) →
/// LayerNormalization with unit scale and zero bias (the IR's own Multiply and Add follow).
fn mvn(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if inputs.len() != 2 {
        return Err(layer.malformed("MVN (opset 6) has two inputs"));
    }
    let rank = inputs[0].dims.len() as i64;
    let axes = constant(layer, b, &inputs[1], "axes")?.ints();
    let last = axes.len() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
    let inside = layer
        .data
        .get("eps_mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("inside_sqrt"));
    if !last || !inside || !layer.flag("normalize_variance", true)? {
        return Err(layer.malformed(
            "only MVN over the last axis, normalizing the variance with eps inside the square root, is supported",
        ));
    }
    let width = *inputs[0]
        .dims
        .last()
        .filter(|&&d| d > 0)
        .ok_or_else(|| layer.malformed("the last axis is dynamic"))? as usize;
    let scale = b.add_constant(
        &format!("{}/scale", layer.name),
        Constant::f32s(&[width], &vec![1.0; width]),
    );
    let bias = b.add_constant(
        &format!("{}/bias", layer.name),
        Constant::f32s(&[width], &vec![0.0; width]),
    );
    b.node(
        "LayerNormalization",
        &layer.name,
        vec![inputs[0].name.clone(), scale, bias],
        outputs.to_vec(),
        vec![int("axis", -1), float("epsilon", layer.float("eps")?)],
    );
    Ok(())
}

/// Gelu (erf form) spelt 0.5·x·(1 + erf(x/√2)); the tanh approximation is refused.
fn gelu(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let mode = layer
        .data
        .get("approximation_mode")
        .map_or("erf", String::as_str);
    if !mode.eq_ignore_ascii_case("erf") {
        return Err(layer.malformed(&format!("Gelu approximation '{mode}' is not supported")));
    }
    let name = &layer.name;
    let x = inputs
        .first()
        .ok_or_else(|| layer.malformed("Gelu has one input"))?
        .name
        .clone();
    let sqrt2 = b.add_constant(
        &format!("{name}/sqrt2"),
        Constant::f32s(&[], &[std::f32::consts::SQRT_2]),
    );
    let one = b.add_constant(&format!("{name}/one"), Constant::f32s(&[], &[1.0]));
    let half = b.add_constant(&format!("{name}/half"), Constant::f32s(&[], &[0.5]));
    let [scaled, erf, shifted, halved] =
        ["scaled", "erf", "shifted", "halved"].map(|s| b.fresh(&format!("{name}/{s}")));
    b.node(
        "Div",
        &format!("{name}/div"),
        vec![x.clone(), sqrt2],
        vec![scaled.clone()],
        vec![],
    );
    b.node(
        "Erf",
        &format!("{name}/erf"),
        vec![scaled],
        vec![erf.clone()],
        vec![],
    );
    b.node(
        "Add",
        &format!("{name}/add"),
        vec![erf, one],
        vec![shifted.clone()],
        vec![],
    );
    b.node(
        "Mul",
        &format!("{name}/half"),
        vec![x, half],
        vec![halved.clone()],
        vec![],
    );
    b.node("Mul", name, vec![halved, shifted], outputs.to_vec(), vec![]);
    Ok(())
}
