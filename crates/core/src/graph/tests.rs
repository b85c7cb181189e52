use super::*;
use crate::builder::ModelBuilder;

fn chain() -> ModelProto {
    ModelBuilder::new(13)
        .input("x", &[None, Some(4)])
        .initializer("w", &[4, 4], &[0.5; 16])
        .node("MatMul", "mm", &["x", "w"], &["y"])
        .node("Relu", "", &["y"], &["z"])
        .output("z", &[None, Some(4)])
        .build()
}

#[test]
fn indexes_producers_consumers_and_names_unnamed_nodes() {
    let g = Graph::new(chain()).unwrap();
    assert_eq!(g.producer("y").unwrap().name.as_deref(), Some("mm"));
    assert_eq!(g.consumers("y")[0].name.as_deref(), Some("Relu_1"));
    assert!(g.initializer("w").is_some());
    assert_eq!(g.inputs().len(), 1);
    assert_eq!(
        g.inputs()[0].shape.as_ref().unwrap()[0],
        Dim::Symbolic("N".into())
    );
}

#[test]
fn out_of_order_nodes_are_sorted() {
    let mut m = chain();
    m.graph.as_mut().unwrap().node.reverse();
    let g = Graph::new(m).unwrap();
    assert_eq!(g.nodes()[0].name.as_deref(), Some("mm"));
}

#[test]
fn dangling_input_is_reported_with_the_node() {
    let m = ModelBuilder::new(13)
        .input("x", &[Some(1)])
        .node("Add", "add", &["x", "ghost"], &["y"])
        .output("y", &[Some(1)])
        .build();
    let err = Graph::new(m).unwrap_err().to_string();
    assert!(err.contains("'add' (Add) reads 'ghost'"), "{err}");
}

#[test]
fn cycle_is_reported() {
    let m = ModelBuilder::new(13)
        .input("x", &[Some(1)])
        .node("Add", "a", &["x", "c"], &["b"])
        .node("Relu", "r", &["b"], &["c"])
        .output("c", &[Some(1)])
        .build();
    let err = Graph::new(m).unwrap_err().to_string();
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn patch_inserts_node_and_failed_patch_leaves_graph_unchanged() {
    let mut g = Graph::new(chain()).unwrap();
    let mut p = Patch::new("insert identity");
    p.push(Edit::AddNode(NodeProto {
        op_type: Some("Identity".into()),
        name: Some("id".into()),
        input: vec!["y".into()],
        output: vec!["y2".into()],
        ..Default::default()
    }))
    .push(Edit::SetInput {
        node: "Relu_1".into(),
        index: 0,
        value: "y2".into(),
    });
    g.apply(&p).unwrap();
    assert_eq!(g.nodes().len(), 3);
    assert_eq!(g.nodes()[1].name.as_deref(), Some("id"));

    let before = g.nodes().len();
    let mut bad = Patch::new("bad");
    bad.push(Edit::RemoveNode("id".into()));
    assert!(
        g.apply(&bad).is_err(),
        "removing 'id' leaves Relu reading an undefined value"
    );
    assert_eq!(g.nodes().len(), before);
}

/// x → Q/DQ → MatMul → Q/DQ → Relu → Q/DQ → MatMul: three ops quantized in QDQ form, the last one reverted
/// in the candidate (it reads Relu's float result, not its dequantized value).
fn qdq_chain(last_reverted: bool) -> ModelProto {
    let last_input = if last_reverted { "y2" } else { "y2d" };
    ModelBuilder::new(13)
        .input("x", &[Some(1), Some(4)])
        .initializer("s", &[], &[0.1])
        .initializer("w", &[4, 4], &[0.5; 16])
        .node("QuantizeLinear", "q0", &["x", "s"], &["xq"])
        .node("DequantizeLinear", "dq0", &["xq", "s"], &["xd"])
        .node("MatMul", "op1", &["xd", "w"], &["y1"])
        .node("QuantizeLinear", "q1", &["y1", "s"], &["y1q"])
        .node("DequantizeLinear", "dq1", &["y1q", "s"], &["y1d"])
        .node("Relu", "op2", &["y1d"], &["y2"])
        .node("QuantizeLinear", "q2", &["y2", "s"], &["y2q"])
        .node("DequantizeLinear", "dq2", &["y2q", "s"], &["y2d"])
        .node("MatMul", "op3", &[last_input, "w"], &["out"])
        .output("out", &[Some(1), Some(4)])
        .build()
}

#[test]
fn a_suffix_cut_anywhere_starts_at_the_changed_op() {
    let suffix = changed_suffix(&qdq_chain(false), &qdq_chain(true), Cut::Anywhere).unwrap();
    assert_eq!(suffix.boundary, ["y2"]);
    assert_eq!(suffix.nodes, 1);
}

#[test]
fn a_suffix_cut_at_quantized_values_starts_where_the_fused_groups_do() {
    // Relu's result gained a reader (the reverted op), so an engine may no longer fuse Relu with its
    // quantizer: Relu runs in the suffix, with the dequantization it reads, from the quantized value y1q.
    let suffix =
        changed_suffix(&qdq_chain(false), &qdq_chain(true), Cut::AtQuantizedValues).unwrap();
    assert_eq!(suffix.boundary, ["y1q"]);
    assert_eq!(suffix.nodes, 5, "dq1, op2, q2, dq2, op3");
    assert_eq!(
        quantized_values(qdq_chain(false).graph.as_ref().unwrap()).len(),
        3
    );
}

/// x → Relu → MatMul → Add(·, x): a residual block in FP32; with `quantized`, the Add's first input goes
/// through Q/DQ (the Add alone quantized, as the sensitivity analysis builds it).
fn residual_block(quantized: bool) -> ModelProto {
    let added = if quantized { "md" } else { "m" };
    let builder = ModelBuilder::new(13)
        .input("x", &[Some(1), Some(4)])
        .initializer("s", &[], &[0.1])
        .initializer("w", &[4, 4], &[0.5; 16])
        .node("Relu", "relu", &["x"], &["r"])
        .node("MatMul", "mm", &["r", "w"], &["m"]);
    let builder = match quantized {
        true => builder
            .node("QuantizeLinear", "q", &["m", "s"], &["mq"])
            .node("DequantizeLinear", "dq", &["mq", "s"], &["md"]),
        false => builder,
    };
    builder
        .node("Add", "add", &[added, "x"], &["out"])
        .output("out", &[Some(1), Some(4)])
        .build()
}

#[test]
fn a_suffix_cut_outside_float_fusions_runs_the_product_its_change_reads() {
    let (base, candidate) = (residual_block(false), residual_block(true));
    let anywhere = changed_suffix(&base, &candidate, Cut::Anywhere).unwrap();
    assert_eq!(anywhere.boundary, ["m", "x"]);
    // The MatMul's result is where an engine fuses it with the Add in the base: the MatMul runs in the suffix.
    let outside = changed_suffix(&base, &candidate, Cut::OutsideFloatFusions).unwrap();
    assert_eq!(outside.boundary, ["r", "x"]);
    assert_eq!(outside.nodes, 4, "mm, q, dq, add");
}

#[test]
fn a_suffix_takes_shape_values_from_the_activation_they_are_the_shape_of() {
    // x → Relu → r; Shape(r) → Reshape(r2, shape): the candidate changes r2's producer only, so the Reshape
    // reads the unchanged shape value, which a suffix computes itself from r rather than reading it.
    let block = |changed: bool| {
        ModelBuilder::new(13)
            .input("x", &[Some(1), Some(4)])
            .initializer("w", &[4, 4], &[if changed { 0.25 } else { 0.5 }; 16])
            .node("Relu", "relu", &["x"], &["r"])
            .node("Shape", "shape", &["r"], &["s"])
            .node("MatMul", "mm", &["r", "w"], &["r2"])
            .node("Reshape", "reshape", &["r2", "s"], &["out"])
            .output("out", &[Some(1), Some(4)])
            .build()
    };
    for cut in [Cut::Anywhere, Cut::OutsideFloatFusions] {
        let suffix = changed_suffix(&block(false), &block(true), cut).unwrap();
        assert_eq!(suffix.boundary, ["r"], "{cut:?}");
        assert_eq!(suffix.nodes, 3, "shape, mm, reshape");
    }
}

#[test]
fn a_prefix_keeps_only_what_its_values_depend_on() {
    let model = qdq_chain(false);
    let tapped = prefix(model.clone(), &["y1q".to_string()]);
    let graph = tapped.graph.as_ref().unwrap();
    let nodes: Vec<&str> = graph
        .node
        .iter()
        .map(|n| n.name.as_deref().unwrap())
        .collect();
    assert_eq!(nodes, ["q0", "dq0", "op1", "q1"]);
    assert!(graph.output.is_empty(), "the caller adds the values");
    assert_eq!(graph.input.len(), 1);
    let initializers: Vec<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_deref().unwrap())
        .collect();
    assert_eq!(initializers, ["s", "w"]);
    let first = prefix(model.clone(), &["xq".to_string()]).graph.unwrap();
    assert_eq!(first.node.len(), 1);
    assert_eq!(
        first.initializer.len(),
        1,
        "the weights only op1 reads are left out"
    );
    // A graph input needs no node.
    let input_only = prefix(model, &["x".to_string()]);
    assert!(input_only.graph.unwrap().node.is_empty());
}
