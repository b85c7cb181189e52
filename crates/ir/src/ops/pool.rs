//! Pooling: IR MaxPool (opset 1 and 8) and AvgPool ↔ ONNX MaxPool and AveragePool; ONNX GlobalAveragePool is
//! written as the IR's ReduceMean over the spatial axes, keeping them (OpenVINO has no global pool), and reads
//! back as a ReduceMean (see `reduce`). MaxPool's indices output must be unused both ways; the IR's
//! `exclude-pad` is ONNX's `count_include_pad` negated, its `rounding_type` ONNX's `ceil_mode`.

use aquant_onnx::attr;

use super::window::{self, ints_text};
use super::{int, ints, Family, OnnxNode};
use crate::graph::{Builder, Input};
use crate::write::{i64_const, single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[("MaxPool", read), ("AvgPool", read)],
    writes: &[
        ("MaxPool", write),
        ("AveragePool", write),
        ("GlobalAveragePool", write_global_average),
    ],
};

/// MaxPool (opset 1 and 8: the indices output must be unused) and AvgPool.
fn read(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let mut attrs = window::read(
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

/// MaxPool → MaxPool (opset 8, indices unused), AveragePool → AvgPool.
fn write(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let (node, name, output) = (n.node, n.name.as_str(), n.output.as_str());
    let kernel = attr::ints(node, "kernel_shape")
        .ok_or_else(|| unwritable(&format!("pool '{name}' has no kernel_shape")))?;
    let max = node.op_type.as_deref() == Some("MaxPool");
    if max && node.output.len() > 1 {
        return Err(unwritable(&format!("MaxPool '{name}' with indices")));
    }
    let mut data = window::write(node, kernel.len(), max)?;
    data.push(("kernel", ints_text(&kernel)));
    let ceil = attr::int(node, "ceil_mode").unwrap_or(0) != 0;
    data.push(("rounding_type", if ceil { "ceil" } else { "floor" }.into()));
    let port = w.source(&node.input[0])?;
    let rank = w.rank(&node.input[0]);
    if max {
        data.push(("index_element_type", "i64".into()));
        data.push(("axis", "0".into()));
        let id = w.layer(
            name,
            "MaxPool",
            &data,
            &[port],
            &[("FP32", Some(output.to_owned())), ("I64", None)],
        );
        w.define(output, id, 0);
    } else {
        let exclude = attr::int(node, "count_include_pad").unwrap_or(0) == 0;
        data.push(("exclude-pad", exclude.to_string()));
        single(w, name, "AvgPool", &data, &[port], output);
    }
    w.set_rank(output, rank);
    Ok(())
}

/// GlobalAveragePool → ReduceMean over axes 2… with `keep_dims`: the input's rank must be known.
fn write_global_average(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let name = &n.name;
    let rank = n.rank.ok_or_else(|| {
        unwritable(&format!(
            "GlobalAveragePool '{name}': the input's rank is unknown"
        ))
    })?;
    let port = w.source(n.first()?)?;
    let axes = i64_const(
        w,
        &format!("{name}/axes"),
        &(2..rank as i64).collect::<Vec<_>>(),
    );
    single(
        w,
        name,
        "ReduceMean",
        &[("keep_dims", "true".into())],
        &[port, axes],
        &n.output,
    );
    w.set_rank(&n.output, Some(rank));
    Ok(())
}
