//! IR operations to ONNX nodes, one function per family. The set is the op set of the IRs OpenVINO makes from
//! common CNNs (the bundled models) and transformer encoders; any other op is one error naming it, never a
//! guess.

use aquant_onnx::proto::attribute_proto::AttributeType;
use aquant_onnx::AttributeProto;

use crate::consts::{Constant, Element};

mod nn;
mod transformer;

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
        "Convolution" | "GroupConvolution" => nn::convolution(layer, inputs, outputs, b)?,
        "MaxPool" | "AvgPool" => nn::pool(layer, inputs, outputs, b)?,
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
        "MatMul" => nn::matmul(layer, inputs, outputs, b)?,
        "MVN" => transformer::mvn(layer, inputs, outputs, b)?,
        "ScaledDotProductAttention" => transformer::attention(layer, inputs, outputs, b)?,
        "Range" => {
            arity(3)?;
            let element = layer.data.get("output_type").map_or("i64", String::as_str);
            if element != "i64" {
                return Err(layer.malformed(&format!("Range of {element} is not supported")));
            }
            let bounds = inputs
                .iter()
                .map(|i| as_i64(layer, b, i))
                .collect::<Result<Vec<_>, _>>()?;
            b.node("Range", name, bounds, outputs.to_vec(), vec![]);
        }
        "Gelu" => transformer::gelu(layer, inputs, outputs, b)?,
        other => {
            return Err(IrError::UnknownOp {
                op: other.to_owned(),
                layer: layer.name.clone(),
            })
        }
    }
    Ok(())
}

pub(crate) fn int(name: &str, value: i64) -> AttributeProto {
    aquant_onnx::attr::make_int(name, value)
}

pub(crate) fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

pub(crate) fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The constant value of `input`, which the op needs at conversion time (`what` names it in the error).
pub(crate) fn constant<'b>(
    layer: &Layer,
    b: &'b Builder,
    input: &Input,
    what: &str,
) -> Result<&'b Constant, IrError> {
    b.constant(&input.name)
        .ok_or_else(|| layer.malformed(&format!("the {what} input is not a constant")))
}

/// `input` as an i64 tensor (ONNX shape, axes and index inputs are i64; the IR also allows i32).
pub(crate) fn as_i64(layer: &Layer, b: &mut Builder, input: &Input) -> Result<String, IrError> {
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
pub(crate) fn cast(
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
