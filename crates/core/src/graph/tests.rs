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
