//! Assembles the ONNX graph: tensors named from the IR's port names, layers in dependency order, Parameters as
//! graph inputs, Results as graph outputs, Consts as initializers (only those some node reads).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use aquant_onnx::proto::tensor_shape_proto::{dimension, Dimension};
use aquant_onnx::proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use aquant_onnx::proto::{AttributeProto, OperatorSetIdProto, TensorShapeProto};
use aquant_onnx::{
    Bytes, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
};

use crate::consts::{self, Constant, Element};
use crate::ops;
use crate::xml::{Layer, Net, Port};
use crate::IrError;

/// The ONNX opset of the converted graph: single-axis Softmax, axes as inputs of Squeeze/Unsqueeze/ReduceSum
/// and as attributes of the other reductions, LayerNormalization.
pub const OPSET: i64 = 17;

/// An input of the layer being converted: its tensor and the shape its port declares.
pub struct Input {
    /// Tensor name.
    pub name: String,
    /// Declared dimensions (-1 dynamic).
    pub dims: Vec<i64>,
    /// Declared precision ("FP32", "BOOL"), when given.
    pub precision: Option<String>,
}

/// The graph being built.
#[derive(Default)]
pub struct Builder {
    /// Nodes in order.
    nodes: Vec<NodeProto>,
    /// Constant tensors by name (Consts, folded Converts, constants the conversion adds).
    constants: HashMap<String, Constant>,
    /// Constants read by some node or output, in first-use order.
    used: Vec<String>,
    /// Every tensor name given out.
    taken: HashSet<String>,
}

impl Builder {
    /// The value of tensor `name` when it is a constant.
    pub fn constant(&self, name: &str) -> Option<&Constant> {
        self.constants.get(name)
    }

    /// A fresh tensor name starting with `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        let mut name = hint.to_owned();
        let mut n = 1;
        while self.taken.contains(&name) {
            name = format!("{hint}_{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// A new constant tensor named after `hint`.
    pub fn add_constant(&mut self, hint: &str, value: Constant) -> String {
        let name = self.fresh(hint);
        self.constants.insert(name.clone(), value);
        name
    }

    /// Records tensor `name` as a constant (a Const layer's output or a folded Convert).
    pub fn define_constant(&mut self, name: &str, value: Constant) {
        self.constants.insert(name.to_owned(), value);
    }

    fn mark_used(&mut self, name: &str) {
        if self.constants.contains_key(name) && !self.used.iter().any(|u| u == name) {
            self.used.push(name.to_owned());
        }
    }

    /// Appends a node.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        for input in &inputs {
            self.mark_used(input);
        }
        self.nodes.push(NodeProto {
            op_type: Some(op.to_owned()),
            name: Some(name.to_owned()),
            input: inputs,
            output: outputs,
            attribute,
            ..Default::default()
        });
    }
}

/// Converts a parsed net whose Consts point into `bin`.
pub fn onnx_model(net: &Net, bin: &Bytes) -> Result<ModelProto, IrError> {
    let order = topological_order(net)?;
    let by_id: HashMap<u64, &Layer> = net.layers.iter().map(|l| (l.id, l)).collect();
    let mut builder = Builder::default();
    let tensor = name_tensors(&order, &by_id, &mut builder);
    let source: HashMap<(u64, u64), (u64, u64)> =
        net.edges.iter().map(|e| (e.to, e.from)).collect();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    // The end of the last byte a Const reads: OpenVINO writes a .bin of exactly its graph's Consts, so a
    // longer one belongs to another graph.
    let mut furthest = 0;
    for &id in &order {
        let layer = by_id[&id];
        let layer_inputs = connected_inputs(layer, &source, &tensor)?;
        let layer_outputs: Vec<String> = layer
            .outputs
            .iter()
            .map(|p| tensor[&(id, p.id)].clone())
            .collect();
        match layer.kind.as_str() {
            "Parameter" => inputs.push(parameter(layer, &layer_outputs[0])?),
            "Result" => {
                let [input] = layer_inputs.as_slice() else {
                    return Err(layer.malformed("a Result has one input"));
                };
                let from = source[&(id, layer.inputs[0].id)];
                let port = by_id[&from.0].outputs.iter().find(|p| p.id == from.1);
                let element = port
                    .and_then(|p| p.precision.as_deref())
                    .map_or(1, precision_type);
                builder.mark_used(&input.name);
                outputs.push(value_info(&input.name, element, &input.dims));
            }
            "Const" | "Constant" => {
                single_output(layer)?;
                let (value, end) = consts::read(layer, bin)?;
                furthest = furthest.max(end);
                builder.define_constant(&layer_outputs[0], value);
            }
            _ => ops::read_layer(layer, &layer_inputs, &layer_outputs, &mut builder)?,
        }
    }
    fold_biases(&mut builder, &outputs);
    if furthest != bin.len() {
        return Err(IrError::Mismatch {
            used: furthest,
            bin: bin.len(),
        });
    }
    if outputs.is_empty() {
        return Err(IrError::Malformed("the net has no Result".into()));
    }
    Ok(model(net, builder, inputs, outputs))
}

/// A fresh tensor name for every output port (layers in `order`): the port's first name, else its layer's
/// (the only output) or `layer:port`.
fn name_tensors(
    order: &[u64],
    by_id: &HashMap<u64, &Layer>,
    builder: &mut Builder,
) -> HashMap<(u64, u64), String> {
    let mut tensor = HashMap::new();
    for &id in order {
        let layer = by_id[&id];
        let single = layer.outputs.len() == 1;
        for port in &layer.outputs {
            let hint = match port.names.first() {
                Some(name) => name.clone(),
                None if single && !layer.name.is_empty() => layer.name.clone(),
                None => format!("{}:{}", layer.name, port.id),
            };
            tensor.insert((id, port.id), builder.fresh(&hint));
        }
    }
    tensor
}

/// The inputs of `layer`: the tensor each input port is connected to (`source`: input port → output port),
/// with the port's declared shape and precision.
fn connected_inputs(
    layer: &Layer,
    source: &HashMap<(u64, u64), (u64, u64)>,
    tensor: &HashMap<(u64, u64), String>,
) -> Result<Vec<Input>, IrError> {
    layer
        .inputs
        .iter()
        .map(|port| {
            let from = source.get(&(layer.id, port.id)).ok_or_else(|| {
                layer.malformed(&format!("input port {} is not connected", port.id))
            })?;
            let name = tensor.get(from).ok_or_else(|| {
                layer.malformed(&format!(
                    "input port {} comes from a missing port {from:?}",
                    port.id
                ))
            })?;
            Ok(Input {
                name: name.clone(),
                dims: port.dims.clone(),
                precision: port.precision.clone(),
            })
        })
        .collect()
}

/// A Parameter as the graph input `name`.
fn parameter(layer: &Layer, name: &str) -> Result<ValueInfoProto, IrError> {
    let port = single_output(layer)?;
    let element = layer.attr("element_type")?;
    let element = Element::parse(element)
        .ok_or_else(|| layer.malformed(&format!("element type '{element}' is not supported")))?;
    Ok(value_info(name, element.onnx() as i32, &port.dims))
}

/// The ONNX model of the built graph: the constants some node or output reads become its initializers.
fn model(
    net: &Net,
    builder: Builder,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> ModelProto {
    let initializer: Vec<TensorProto> = builder
        .used
        .iter()
        .map(|name| builder.constants[name].tensor(name))
        .collect();
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("aquant-ir".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        graph: Some(GraphProto {
            name: Some(net.name.clone()),
            node: builder.nodes,
            initializer,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn single_output(layer: &Layer) -> Result<&Port, IrError> {
    match layer.outputs.as_slice() {
        [port] => Ok(port),
        _ => Err(layer.malformed("expected exactly one output port")),
    }
}

/// The ONNX element type of a port precision.
fn precision_type(precision: &str) -> i32 {
    match precision {
        "FP16" => 10,
        "I64" => 7,
        "I32" => 6,
        "I8" => 3,
        "U8" => 2,
        "BOOL" | "BOOLEAN" => 9,
        _ => 1,
    }
}

fn value_info(name: &str, element: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = |(i, &d): (usize, &i64)| Dimension {
        value: Some(if d < 0 {
            dimension::Value::DimParam(if i == 0 { "N".into() } else { format!("d{i}") })
        } else {
            dimension::Value::DimValue(d)
        }),
        ..Default::default()
    };
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: Some(element),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().enumerate().map(dim).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Layer ids with every layer after the layers it reads (file order among independent layers).
fn topological_order(net: &Net) -> Result<Vec<u64>, IrError> {
    let mut position = BTreeMap::new();
    for (i, layer) in net.layers.iter().enumerate() {
        if position.insert(layer.id, i).is_some() {
            return Err(IrError::Malformed(format!(
                "two layers have id {}",
                layer.id
            )));
        }
    }
    let mut pending: Vec<usize> = vec![0; net.layers.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); net.layers.len()];
    for edge in &net.edges {
        let (Some(&from), Some(&to)) = (position.get(&edge.from.0), position.get(&edge.to.0))
        else {
            return Err(IrError::Malformed(format!(
                "an edge joins layer {} to layer {}, which do not both exist",
                edge.from.0, edge.to.0
            )));
        };
        pending[to] += 1;
        consumers[from].push(to);
    }
    let mut ready: VecDeque<usize> = (0..net.layers.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(net.layers.len());
    while let Some(i) = ready.pop_front() {
        order.push(net.layers[i].id);
        for &next in &consumers[i] {
            pending[next] -= 1;
            if pending[next] == 0 {
                ready.push_back(next);
            }
        }
    }
    if order.len() != net.layers.len() {
        return Err(IrError::Malformed("the edges form a cycle".into()));
    }
    Ok(order)
}

/// Folds `Add(Conv(x, w), b)` with a constant per-channel `b` (`[1, C, 1…]`) into `Conv(x, w, b)` named after
/// the Add. OpenVINO splits a biased convolution into the two (`…/Conv/WithoutBiases` and `…/Conv`); aquant
/// quantizes and reverts a convolution with its bias, and names it as the ONNX model it came from did.
fn fold_biases(builder: &mut Builder, outputs: &[ValueInfoProto]) {
    let readers = reader_counts(builder, outputs);
    let mut folded = vec![false; builder.nodes.len()];
    for conv in 0..builder.nodes.len() {
        let Some((add, other, flat)) = bias_after(builder, &readers, conv) else {
            continue;
        };
        let name = builder.add_constant(&format!("{other}/bias"), flat);
        let (add_name, add_output) = (
            builder.nodes[add].name.clone(),
            builder.nodes[add].output.clone(),
        );
        let conv_node = &mut builder.nodes[conv];
        conv_node.input.push(name.clone());
        conv_node.output = add_output;
        conv_node.name = add_name;
        builder.used.push(name);
        folded[add] = true;
    }
    let mut index = 0;
    builder.nodes.retain(|_| {
        index += 1;
        !folded[index - 1]
    });
    // Constants only the folded Adds read are no longer used.
    let read: HashSet<&String> = builder
        .nodes
        .iter()
        .flat_map(|n| &n.input)
        .chain(outputs.iter().filter_map(|o| o.name.as_ref()))
        .collect();
    let used: Vec<String> = builder
        .used
        .iter()
        .filter(|u| read.contains(u))
        .cloned()
        .collect();
    builder.used = used;
}

/// How many nodes and graph outputs read each tensor.
fn reader_counts(builder: &Builder, outputs: &[ValueInfoProto]) -> HashMap<String, usize> {
    let mut readers: HashMap<String, usize> = HashMap::new();
    for node in &builder.nodes {
        for input in &node.input {
            *readers.entry(input.clone()).or_default() += 1;
        }
    }
    for output in outputs {
        *readers
            .entry(output.name.clone().unwrap_or_default())
            .or_default() += 1;
    }
    readers
}

/// When node `conv` is a bias-less Conv read only by an Add of a constant per-channel f32 bias: that Add's
/// index, the bias tensor and the bias flattened to `[C]`.
fn bias_after(
    builder: &Builder,
    readers: &HashMap<String, usize>,
    conv: usize,
) -> Option<(usize, String, Constant)> {
    let node = &builder.nodes[conv];
    if node.op_type.as_deref() != Some("Conv")
        || node.input.len() != 2
        || readers.get(&node.output[0]) != Some(&1)
    {
        return None;
    }
    let produced = &node.output[0];
    let add = builder
        .nodes
        .iter()
        .position(|n| n.op_type.as_deref() == Some("Add") && n.input.contains(produced))?;
    let other = builder.nodes[add]
        .input
        .iter()
        .find(|i| *i != produced)
        .cloned()
        .unwrap_or_default();
    let bias = builder.constants.get(&other)?;
    let channels = bias.dims.get(1).copied().unwrap_or(0);
    let per_channel = bias.dims.len() >= 2
        && bias.dims[0] == 1
        && bias.dims[2..].iter().all(|&d| d == 1)
        && bias.element == Element::F32;
    if !per_channel || channels == 0 {
        return None;
    }
    let flat = Constant {
        dims: vec![channels],
        ..bias.clone()
    };
    Some((add, other, flat))
}
