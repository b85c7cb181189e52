//! The op families. Each file holds one family both ways, side by side: how its IR operations become ONNX
//! nodes (reading, into a [`Builder`]) and how its ONNX nodes become IR layers (writing, into a [`Writer`]),
//! and registers both in its [`Family`]; the two lookups below find an op's reader or writer by its type name.
//! The set is the op set of the IRs OpenVINO makes from common CNNs (the bundled models) and transformer
//! encoders, and of the ONNX models aquant quantizes; any other op is one error naming it, never a guess.

use aquant_onnx::proto::attribute_proto::AttributeType;
use aquant_onnx::{AttributeProto, NodeProto};

use crate::consts::{Constant, Element};
use crate::graph::{Builder, Input};
use crate::write::{unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

mod activation;
mod arith;
mod constant;
mod conv;
mod layout;
mod matmul;
mod pool;
pub(crate) mod quantize;
mod reduce;
mod shape;
mod transformer;
mod window;

/// Reads one IR layer (its inputs, the names of its outputs) into ONNX nodes.
type Read = fn(&Layer, &[Input], &[String], &mut Builder) -> Result<(), IrError>;

/// Writes one ONNX node as IR layers.
type Write = for<'g> fn(&mut Writer<'g>, &OnnxNode<'g>) -> Result<(), IrError>;

/// One op family's readers, by IR layer type, and writers, by ONNX op type.
pub struct Family {
    /// IR layer types and how each is read.
    reads: &'static [(&'static str, Read)],
    /// ONNX op types and how each is written.
    writes: &'static [(&'static str, Write)],
}

/// Every family; an op type is registered by one family at most.
const FAMILIES: &[Family] = &[
    activation::FAMILY,
    arith::FAMILY,
    constant::FAMILY,
    conv::FAMILY,
    layout::FAMILY,
    matmul::FAMILY,
    pool::FAMILY,
    quantize::FAMILY,
    reduce::FAMILY,
    shape::FAMILY,
    transformer::FAMILY,
];

/// Reads one layer (neither Parameter, Result nor Const).
pub fn read_layer(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let read = FAMILIES
        .iter()
        .flat_map(|family| family.reads)
        .find(|(kind, _)| *kind == layer.kind)
        .map(|&(_, read)| read)
        .ok_or_else(|| IrError::UnknownOp {
            op: layer.kind.clone(),
            layer: layer.name.clone(),
        })?;
    read(layer, inputs, outputs, b)
}

/// An ONNX node being written, with what every writer needs of it.
pub struct OnnxNode<'g> {
    /// The node.
    node: &'g NodeProto,
    /// Its op type.
    op: &'g str,
    /// Its name, or its first output's when it has none.
    name: String,
    /// Its first output.
    output: String,
    /// Its first input (`None`: a node without inputs, a Constant).
    first: Option<String>,
    /// The rank of its first input, when known.
    rank: Option<usize>,
}

impl OnnxNode<'_> {
    /// Its first input, which every op but Constant reads.
    fn first(&self) -> Result<&str, IrError> {
        self.first
            .as_deref()
            .ok_or_else(|| unwritable(&format!("node '{}' has no input", self.name)))
    }

    /// Input `i`, unless absent or empty (an omitted optional input).
    fn input(&self, i: usize) -> Option<String> {
        self.node.input.get(i).filter(|s| !s.is_empty()).cloned()
    }
}

/// Writes one node; a node without an output is refused before its op is looked up, one without an input by
/// the writers that read it.
pub fn write_node<'g>(w: &mut Writer<'g>, node: &'g NodeProto) -> Result<(), IrError> {
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
    let first = node.input.first().filter(|s| !s.is_empty()).cloned();
    let rank = first.as_deref().and_then(|first| w.rank(first));
    let write = FAMILIES
        .iter()
        .flat_map(|family| family.writes)
        .find(|(kind, _)| *kind == op)
        .map(|&(_, write)| write)
        .ok_or_else(|| {
            unwritable(&format!(
                "ONNX op '{op}' (node '{name}') has no IR form here"
            ))
        })?;
    let node = OnnxNode {
        node,
        op,
        name,
        output,
        first,
        rank,
    };
    write(w, &node)
}

/// Checks that `layer` has `n` inputs.
fn arity(layer: &Layer, inputs: &[Input], n: usize) -> Result<(), IrError> {
    if inputs.len() == n {
        Ok(())
    } else {
        Err(layer.malformed(&format!("{} inputs, expected {n}", inputs.len())))
    }
}

/// The tensor names of `inputs`.
fn names(inputs: &[Input]) -> Vec<String> {
    inputs.iter().map(|i| i.name.clone()).collect()
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
