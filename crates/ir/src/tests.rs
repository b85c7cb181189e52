//! The reader on a small hand-written IR: what it becomes, and each kind of damage as one error.

use super::*;

/// Parameter → Convolution (Const weights 2×1×3×3) → Add (Const bias) → ReLU → Result, IR 11.
fn xml(version: u32, relu: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<net name="tiny" version="{version}">
  <layers>
    <layer id="0" name="x" type="Parameter" version="opset1">
      <data shape="?,1,4,4" element_type="f32"/>
      <output><port id="0" precision="FP32" names="x"><dim>-1</dim><dim>1</dim><dim>4</dim><dim>4</dim></port></output>
    </layer>
    <layer id="1" name="w" type="Const" version="opset1">
      <data element_type="f32" shape="2, 1, 3, 3" offset="0" size="72"/>
      <output><port id="0" precision="FP32"><dim>2</dim><dim>1</dim><dim>3</dim><dim>3</dim></port></output>
    </layer>
    <layer id="2" name="conv" type="Convolution" version="opset1">
      <data strides="1, 1" dilations="1, 1" pads_begin="1, 1" pads_end="1, 1" auto_pad="explicit"/>
      <input><port id="0"/><port id="1"/></input>
      <output><port id="2" precision="FP32"><dim>-1</dim><dim>2</dim><dim>4</dim><dim>4</dim></port></output>
    </layer>
    <layer id="3" name="b" type="Const" version="opset1">
      <data element_type="f32" shape="1, 2, 1, 1" offset="72" size="8"/>
      <output><port id="0" precision="FP32"><dim>1</dim><dim>2</dim><dim>1</dim><dim>1</dim></port></output>
    </layer>
    <layer id="4" name="add" type="Add" version="opset1">
      <data auto_broadcast="numpy"/>
      <input><port id="0"/><port id="1"/></input>
      <output><port id="2" precision="FP32" names="pre, pre\,alias"><dim>-1</dim><dim>2</dim><dim>4</dim><dim>4</dim></port></output>
    </layer>
    <layer id="5" name="act" type="{relu}" version="opset1">
      <input><port id="0"/></input>
      <output><port id="1" precision="FP32" names="y"><dim>-1</dim><dim>2</dim><dim>4</dim><dim>4</dim></port></output>
    </layer>
    <layer id="6" name="y/sink" type="Result" version="opset1">
      <input><port id="0"><dim>-1</dim><dim>2</dim><dim>4</dim><dim>4</dim></port></input>
    </layer>
  </layers>
  <edges>
    <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
    <edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
    <edge from-layer="2" from-port="2" to-layer="4" to-port="0"/>
    <edge from-layer="3" from-port="0" to-layer="4" to-port="1"/>
    <edge from-layer="4" from-port="2" to-layer="5" to-port="0"/>
    <edge from-layer="5" from-port="1" to-layer="6" to-port="0"/>
  </edges>
</net>"#
    )
}

fn bin() -> Vec<u8> {
    (0..20)
        .flat_map(|i| (i as f32 * 0.1).to_le_bytes())
        .collect()
}

#[test]
fn a_small_ir_becomes_the_same_onnx_graph() {
    for version in VERSIONS {
        let model = read_ir(&xml(version, "ReLU"), &bin()).unwrap();
        let graph = model.graph.clone().unwrap();
        let ops: Vec<&str> = graph
            .node
            .iter()
            .map(|n| n.op_type.as_deref().unwrap())
            .collect();
        // The per-channel Add after the convolution is its bias: one Conv, named after the Add.
        assert_eq!(ops, ["Conv", "Relu"]);
        assert_eq!(graph.node[0].input, ["x", "w", "b/bias"]);
        assert_eq!(graph.node[0].output, ["pre"]);
        assert_eq!(graph.node[0].name.as_deref(), Some("add"));
        assert_eq!(graph.input[0].name.as_deref(), Some("x"));
        assert_eq!(graph.output[0].name.as_deref(), Some("y"));
        assert_eq!(graph.initializer.len(), 2);
        assert_eq!(graph.initializer[0].dims, [2, 1, 3, 3]);
        assert_eq!(graph.initializer[1].dims, [2]);
        assert_eq!(aquant_onnx::default_opset(&model), OPSET);
    }
}

fn error(xml: &str, bin: &[u8]) -> String {
    let message = read_ir(xml, bin).unwrap_err().to_string();
    assert_eq!(message.lines().count(), 1, "{message}");
    message
}

#[test]
fn each_kind_of_damage_is_one_error() {
    let good = xml(11, "ReLU");
    let bin = bin();
    assert!(error(&good, &bin[..40]).contains("truncated or does not belong"));
    let mut longer = bin.clone();
    longer.extend([0; 4]);
    assert!(error(&good, &longer).contains("does not belong to this .xml"));
    assert_eq!(
        error(&xml(11, "Swish"), &bin),
        "IR operation 'Swish' (layer 'act') is not supported"
    );
    assert!(error(&good[..good.len() / 2], &bin).contains("not well-formed XML"));
    assert!(error(&xml(7, "ReLU"), &bin).contains("IR version 7 is not supported"));
    let unconnected = good.replace(
        r#"<edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>"#,
        "",
    );
    assert!(error(&unconnected, &bin).contains("input port 0 is not connected"));
    let cycle = good.replace(
        r#"<edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>"#,
        r#"<edge from-layer="5" from-port="1" to-layer="2" to-port="0"/>"#,
    );
    assert!(error(&cycle, &bin).contains("cycle"));
    let wrong_size = good.replace(r#"offset="72" size="8""#, r#"offset="72" size="12""#);
    assert!(error(&wrong_size, &bin).contains("size 12 bytes"));
    let huge = good.replace(
        r#"shape="2, 1, 3, 3""#,
        r#"shape="99999999999, 99999999999, 3, 3""#,
    );
    assert!(error(&huge, &bin).contains("overflows"));
    assert!(error("<notnet/>", &bin).contains("not <net>"));
}

/// A loaded IR's initializers are slices of one mapping of its `.bin`: the weights are not copied on the way in.
#[test]
fn loaded_weights_are_slices_of_the_mapped_bin() {
    let dir = tempfile::tempdir().unwrap();
    let xml_path = dir.path().join("tiny.xml");
    std::fs::write(&xml_path, xml(11, "ReLU")).unwrap();
    std::fs::write(weights_beside(&xml_path), bin()).unwrap();
    let model = load_ir(&xml_path, None).unwrap();
    let graph = model.graph.unwrap();
    let raw = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .and_then(|t| t.raw_data.clone())
            .unwrap_or_else(|| panic!("initializer {name}"))
    };
    let conv = graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Conv"))
        .unwrap();
    let (weights, bias) = (raw(&conv.input[1]), raw(&conv.input[2]));
    let whole = bin();
    assert_eq!(&weights[..], &whole[..72]);
    assert_eq!(&bias[..], &whole[72..80]);
    // The bias (offset 72) sits 72 bytes after the weights (offset 0) in memory: one buffer, the file's.
    assert_eq!(bias.as_ptr() as usize - weights.as_ptr() as usize, 72);
}

/// An ONNX Constant node has no input: it is written as the Const its readers take, not refused.
#[test]
fn a_constant_node_is_written_as_the_const_its_reader_takes() {
    use aquant_onnx::proto::attribute_proto::AttributeType;
    use aquant_onnx::{AttributeProto, NodeProto, TensorProto};

    let mut model = read_ir(&xml(11, "ReLU"), &bin()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let two = TensorProto {
        data_type: Some(1),
        dims: vec![1],
        float_data: vec![2.0],
        ..Default::default()
    };
    graph.node.push(NodeProto {
        op_type: Some("Constant".into()),
        name: Some("two".into()),
        output: vec!["two".into()],
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(two),
            ..Default::default()
        }],
        ..Default::default()
    });
    graph.node.push(NodeProto {
        op_type: Some("Mul".into()),
        name: Some("scaled".into()),
        input: vec!["y".into(), "two".into()],
        output: vec!["z".into()],
        ..Default::default()
    });
    graph.output[0].name = Some("z".into());
    let written = write_ir(&model).unwrap();
    let back = read_ir(&written.xml, &written.bin).unwrap();
    let graph = back.graph.unwrap();
    let mul = graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Mul"))
        .expect("the Mul is written");
    let constant = graph
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(mul.input[1].as_str()))
        .expect("the Constant's value is a Const the Mul reads");
    assert_eq!(aquant_onnx::tensor::to_f32(constant).unwrap(), [2.0]);
}
