//! Building small models in code: for tests, examples and users who want to check aquant on a toy graph.

use aquant_onnx::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
use aquant_onnx::proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use aquant_onnx::proto::{OperatorSetIdProto, TensorShapeProto};
use aquant_onnx::{
    tensor, AttributeProto, GraphProto, ModelProto, NodeProto, TypeProto, ValueInfoProto,
};

/// A float32 value declaration; `None` dimensions are the symbolic batch `N`.
pub fn float_value(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => DimValue::DimValue(*v as i64),
                None => DimValue::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: Some(1),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a model node by node.
#[derive(Debug, Clone, Default)]
pub struct ModelBuilder {
    graph: GraphProto,
    opset: i64,
}

impl ModelBuilder {
    /// An empty model importing default-domain opset `opset`.
    pub fn new(opset: i64) -> Self {
        ModelBuilder {
            graph: GraphProto {
                name: Some("model".into()),
                ..Default::default()
            },
            opset,
        }
    }

    /// Declares a float32 graph input.
    pub fn input(mut self, name: &str, dims: &[Option<usize>]) -> Self {
        self.graph.input.push(float_value(name, dims));
        self
    }

    /// Declares a float32 graph output.
    pub fn output(mut self, name: &str, dims: &[Option<usize>]) -> Self {
        self.graph.output.push(float_value(name, dims));
        self
    }

    /// Adds a float32 initializer.
    pub fn initializer(mut self, name: &str, dims: &[usize], values: &[f32]) -> Self {
        self.graph
            .initializer
            .push(tensor::from_f32(name, dims, values));
        self
    }

    /// Adds an int64 initializer (shapes, axes).
    pub fn initializer_i64(mut self, name: &str, dims: &[usize], values: &[i64]) -> Self {
        self.graph
            .initializer
            .push(tensor::from_i64(name, dims, values));
        self
    }

    /// Adds a node.
    pub fn node(mut self, op_type: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Self {
        self.graph.node.push(NodeProto {
            op_type: Some(op_type.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        });
        self
    }

    /// Adds an attribute to the last node added.
    pub fn attr(mut self, attribute: AttributeProto) -> Self {
        if let Some(node) = self.graph.node.last_mut() {
            node.attribute.push(attribute);
        }
        self
    }

    /// Adds a ready-made node.
    pub fn raw_node(mut self, node: NodeProto) -> Self {
        self.graph.node.push(node);
        self
    }

    /// Declares a graph output without type information (the engine infers it).
    pub fn output_untyped(mut self, name: &str) -> Self {
        self.graph.output.push(ValueInfoProto {
            name: Some(name.into()),
            ..Default::default()
        });
        self
    }

    /// The finished model.
    pub fn build(self) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            producer_name: Some("aquant-builder".into()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.opset),
            }],
            graph: Some(self.graph),
            ..Default::default()
        }
    }
}
