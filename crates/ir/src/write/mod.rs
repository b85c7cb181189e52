//! Writes a (quantized) ONNX graph as an OpenVINO IR 11 in NNCF's form.
//!
//! OpenVINO users deploy IRs, and the form NNCF writes is the one OpenVINO's low-precision transformations
//! turn into int8 kernels: activations quantized by `FakeQuantize` (256 levels, per-tensor or per-channel
//! limits), weights stored as int8 `Const` → `Convert` → (`Subtract` zero point) → `Multiply` scale. aquant's
//! QDQ pairs (`QuantizeLinear` → `DequantizeLinear`) on activations become the former, `DequantizeLinear` of an
//! int8 (or int32 bias) initializer the latter; ops left in FP32 (reverted) keep their FP32 Consts. The op set
//! is that of the models aquant quantizes (see `ops`); anything else is one [`IrError::Unwritable`].
//!
//! Port dimensions are not written: OpenVINO infers them on reading (their precisions are written, which it
//! requires).

pub(crate) mod tensor;

use std::collections::HashMap;
use std::fmt::Write as _;

use aquant_onnx::{ModelProto, NodeProto, TensorProto};

use crate::ops;
use crate::IrError;

/// A written IR: the `.xml` text and the `.bin` bytes.
pub struct WrittenIr {
    /// The graph.
    pub xml: String,
    /// The Consts' bytes.
    pub bin: Vec<u8>,
}

/// Converts `model` (ONNX, QDQ or FP32) into an IR.
pub fn write_ir(model: &ModelProto) -> Result<WrittenIr, IrError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| unwritable("the model has no graph"))?;
    let mut w = Writer::new(graph);
    for input in &graph.input {
        let name = input.name.clone().unwrap_or_default();
        if w.initializers.contains_key(&name) {
            continue;
        }
        let (element, dims) = tensor::value_type(input)?;
        let shape = dims
            .iter()
            .map(|d| d.map_or("?".into(), |d| d.to_string()))
            .collect::<Vec<_>>()
            .join(",");
        let id = w.layer(
            &name,
            "Parameter",
            &[("shape", shape), ("element_type", element.into())],
            &[],
            &[(precision(element), Some(name.clone()))],
        );
        w.ranks.insert(name.clone(), dims.len());
        w.define(&name, id, 0);
    }
    for node in &graph.node {
        ops::write_node(&mut w, node)?;
    }
    for output in &graph.output {
        let name = output.name.clone().unwrap_or_default();
        let source = w.source(&name)?;
        w.layer(
            &format!("{name}/sink_port_0"),
            "Result",
            &[],
            &[source],
            &[],
        );
    }
    Ok(w.finish(graph.name.as_deref().unwrap_or("aquant")))
}

pub(crate) fn unwritable(why: &str) -> IrError {
    IrError::Unwritable(why.to_owned())
}

/// An output port: (layer id, port id).
pub(crate) type Port = (usize, usize);

/// A Const layer of f32 `values` shaped `dims`.
pub(crate) fn f32_const(w: &mut Writer, name: &str, dims: &[usize], values: &[f32]) -> Port {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.const_layer(name, "f32", dims, &bytes)
}

/// A Const layer of i64 `values` shaped `[len]` (axes, orders, shapes).
pub(crate) fn i64_const(w: &mut Writer, name: &str, values: &[i64]) -> Port {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.const_layer(name, "i64", &[values.len()], &bytes)
}

/// A layer with one f32 output named `output`.
pub(crate) fn single(
    w: &mut Writer,
    name: &str,
    kind: &'static str,
    data: &[(&'static str, String)],
    inputs: &[Port],
    output: &str,
) {
    let id = w.layer(
        name,
        kind,
        data,
        inputs,
        &[("FP32", Some(output.to_owned()))],
    );
    w.define(output, id, 0);
}

/// The port precision of an IR element type.
fn precision(element: &str) -> &'static str {
    match element {
        "f32" => "FP32",
        "f16" => "FP16",
        "i64" => "I64",
        "i32" => "I32",
        "i8" => "I8",
        "u8" => "U8",
        "boolean" => "BOOL",
        _ => "FP32",
    }
}

/// A layer as written.
struct Layer {
    name: String,
    kind: &'static str,
    version: &'static str,
    data: Vec<(&'static str, String)>,
    inputs: Vec<(usize, usize)>,
    /// (precision, tensor name) of each output port.
    outputs: Vec<(&'static str, Option<String>)>,
}

/// The IR being built.
pub(crate) struct Writer<'g> {
    layers: Vec<Layer>,
    bin: Vec<u8>,
    /// ONNX tensor → (layer, output port).
    tensors: HashMap<String, (usize, usize)>,
    /// ONNX initializers (and Constant node values) by name.
    initializers: HashMap<String, &'g TensorProto>,
    /// Constant node values, owned.
    constants: HashMap<String, TensorProto>,
    /// Known tensor ranks.
    ranks: HashMap<String, usize>,
    /// Consumers of each tensor.
    consumers: HashMap<String, Vec<&'g NodeProto>>,
    /// QuantizeLinear nodes by their output, for the DequantizeLinear that closes the pair.
    pub(crate) quantized: HashMap<String, &'g NodeProto>,
    /// DequantizeLinear nodes of initializers by their output, written when first read (a grouped
    /// convolution or a bias reads them in another shape).
    pub(crate) pending: HashMap<String, &'g NodeProto>,
}

impl<'g> Writer<'g> {
    fn new(graph: &'g aquant_onnx::GraphProto) -> Writer<'g> {
        let mut consumers: HashMap<String, Vec<&NodeProto>> = HashMap::new();
        for node in &graph.node {
            for input in &node.input {
                consumers.entry(input.clone()).or_default().push(node);
            }
        }
        Writer {
            layers: Vec::new(),
            bin: Vec::new(),
            tensors: HashMap::new(),
            initializers: graph
                .initializer
                .iter()
                .map(|t| (t.name.clone().unwrap_or_default(), t))
                .collect(),
            constants: HashMap::new(),
            ranks: HashMap::new(),
            consumers,
            quantized: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// Adds a layer; returns its id. Output port ids follow the input port ids, as OpenVINO numbers them.
    pub(crate) fn layer(
        &mut self,
        name: &str,
        kind: &'static str,
        data: &[(&'static str, String)],
        inputs: &[(usize, usize)],
        outputs: &[(&'static str, Option<String>)],
    ) -> usize {
        let version = match kind {
            "MaxPool" => "opset8",
            "Softmax" => "opset8",
            _ => "opset1",
        };
        self.layers.push(Layer {
            name: name.to_owned(),
            kind,
            version,
            data: data.to_vec(),
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        });
        self.layers.len() - 1
    }

    /// The port of a layer's output `index` (port ids: inputs first).
    pub(crate) fn port(&self, layer: usize, index: usize) -> (usize, usize) {
        (layer, self.layers[layer].inputs.len() + index)
    }

    /// Records that ONNX tensor `name` is output `index` of `layer`.
    pub(crate) fn define(&mut self, name: &str, layer: usize, index: usize) {
        let port = self.port(layer, index);
        self.tensors.insert(name.to_owned(), port);
    }

    /// A constant tensor's value (initializer or Constant node).
    pub(crate) fn constant(&self, name: &str) -> Option<&TensorProto> {
        self.constants
            .get(name)
            .or_else(|| self.initializers.get(name).copied())
    }

    /// Records a Constant node's value.
    pub(crate) fn define_constant(&mut self, name: &str, value: TensorProto) {
        self.constants.insert(name.to_owned(), value);
    }

    /// The nodes reading `name`.
    pub(crate) fn consumers(&self, name: &str) -> &[&'g NodeProto] {
        self.consumers.get(name).map_or(&[], Vec::as_slice)
    }

    /// The rank of `name`, when known.
    pub(crate) fn rank(&self, name: &str) -> Option<usize> {
        self.ranks
            .get(name)
            .copied()
            .or_else(|| self.constant(name).map(|t| t.dims.len()))
    }

    /// Records the rank of `name`.
    pub(crate) fn set_rank(&mut self, name: &str, rank: Option<usize>) {
        if let Some(rank) = rank {
            self.ranks.insert(name.to_owned(), rank);
        }
    }

    /// A Const layer holding `bytes` of `element` shaped `dims`; returns its output port.
    pub(crate) fn const_layer(
        &mut self,
        name: &str,
        element: &'static str,
        dims: &[usize],
        bytes: &[u8],
    ) -> (usize, usize) {
        let offset = self.bin.len();
        self.bin.extend_from_slice(bytes);
        let shape = dims
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let id = self.layer(
            name,
            "Const",
            &[
                ("element_type", element.into()),
                ("shape", shape),
                ("offset", offset.to_string()),
                ("size", bytes.len().to_string()),
            ],
            &[],
            &[(precision(element), None)],
        );
        self.port(id, 0)
    }

    /// The port producing ONNX tensor `name`: a layer output, or a Const made from the initializer or Constant
    /// node value (once).
    pub(crate) fn source(&mut self, name: &str) -> Result<(usize, usize), IrError> {
        if let Some(&port) = self.tensors.get(name) {
            return Ok(port);
        }
        if let Some(node) = self.pending.get(name).copied() {
            let port = ops::quantize::dequantized(self, node, None)?;
            self.tensors.insert(name.to_owned(), port);
            return Ok(port);
        }
        let tensor = self
            .constant(name)
            .ok_or_else(|| unwritable(&format!("tensor '{name}' is produced by nothing")))?
            .clone();
        let (element, dims, bytes) = tensor::tensor_bytes(&tensor)?;
        let port = self.const_layer(name, element, &dims, &bytes);
        self.tensors.insert(name.to_owned(), port);
        Ok(port)
    }

    fn finish(self, name: &str) -> WrittenIr {
        let mut xml = String::new();
        let _ = writeln!(
            xml,
            "<?xml version=\"1.0\"?>\n<net name=\"{}\" version=\"11\">\n\t<layers>",
            escape(name)
        );
        let mut edges = Vec::new();
        for (id, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(
                xml,
                "\t\t<layer id=\"{id}\" name=\"{}\" type=\"{}\" version=\"{}\">",
                escape(&layer.name),
                layer.kind,
                layer.version
            );
            if !layer.data.is_empty() {
                let attrs: String = layer
                    .data
                    .iter()
                    .map(|(k, v)| format!(" {k}=\"{}\"", escape(v)))
                    .collect();
                let _ = writeln!(xml, "\t\t\t<data{attrs} />");
            }
            if !layer.inputs.is_empty() {
                let _ = writeln!(xml, "\t\t\t<input>");
                for (port, &(from, from_port)) in layer.inputs.iter().enumerate() {
                    let _ = writeln!(xml, "\t\t\t\t<port id=\"{port}\" />");
                    edges.push((from, from_port, id, port));
                }
                let _ = writeln!(xml, "\t\t\t</input>");
            }
            if !layer.outputs.is_empty() {
                let _ = writeln!(xml, "\t\t\t<output>");
                for (i, (precision, names)) in layer.outputs.iter().enumerate() {
                    let port = layer.inputs.len() + i;
                    let names = names
                        .as_ref()
                        .map(|n| format!(" names=\"{}\"", escape(&n.replace(',', "\\,"))))
                        .unwrap_or_default();
                    let _ = writeln!(
                        xml,
                        "\t\t\t\t<port id=\"{port}\" precision=\"{precision}\"{names} />"
                    );
                }
                let _ = writeln!(xml, "\t\t\t</output>");
            }
            let _ = writeln!(xml, "\t\t</layer>");
        }
        let _ = writeln!(xml, "\t</layers>\n\t<edges>");
        for (from, from_port, to, to_port) in edges {
            let _ = writeln!(
                xml,
                "\t\t<edge from-layer=\"{from}\" from-port=\"{from_port}\" to-layer=\"{to}\" to-port=\"{to_port}\" />"
            );
        }
        let _ = writeln!(xml, "\t</edges>\n</net>");
        WrittenIr { xml, bin: self.bin }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
