//! Node attribute access and construction.

use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, NodeProto};

fn find<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

/// An integer attribute.
pub fn int(node: &NodeProto, name: &str) -> Option<i64> {
    find(node, name).and_then(|a| a.i)
}

/// A float attribute.
pub fn float(node: &NodeProto, name: &str) -> Option<f32> {
    find(node, name).and_then(|a| a.f)
}

/// A list-of-integers attribute.
pub fn ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    find(node, name).map(|a| a.ints.clone())
}

/// A string attribute (lossy UTF-8).
pub fn string(node: &NodeProto, name: &str) -> Option<String> {
    find(node, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

/// Builds an integer attribute.
pub fn make_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}
