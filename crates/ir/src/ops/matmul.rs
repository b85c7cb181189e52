//! Matrix products: IR MatMul ↔ ONNX MatMul and Gemm. The IR's MatMul transposes either operand on request
//! (`transpose_a`, `transpose_b`) where ONNX's MatMul does not; Gemm's bias is the IR's Add after the MatMul,
//! written under the names OpenVINO gives the two (`…/WithoutBiases` and the Gemm's own).

use aquant_onnx::attr;

use super::{ints, Family, OnnxNode};
use crate::consts::Constant;
use crate::graph::{Builder, Input};
use crate::write::{single, unwritable, Writer};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[("MatMul", read)],
    writes: &[("Gemm", write), ("MatMul", write)],
};

/// MatMul with `transpose_a`/`transpose_b`: a transposed 2-D constant is stored transposed (a weight
/// initializer aquant quantizes, as ONNX exporters write it); a computed operand gets a Transpose of its last
/// two axes.
fn read(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if inputs.len() != 2 {
        return Err(layer.malformed("a MatMul has two inputs"));
    }
    let mut operands = Vec::new();
    for (input, key) in inputs.iter().zip(["transpose_a", "transpose_b"]) {
        if !layer.flag(key, false)? {
            operands.push(input.name.clone());
            continue;
        }
        if let Some(c) = b
            .constant(&input.name)
            .filter(|c| c.dims.len() == 2)
            .cloned()
        {
            operands.push(b.add_constant(&format!("{}/transposed", input.name), transposed(&c)));
            continue;
        }
        let rank = input.dims.len();
        if rank < 2 {
            return Err(layer.malformed(&format!("{key} of a rank-{rank} operand")));
        }
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.swap(rank - 2, rank - 1);
        let out = b.fresh(&format!("{}/{key}", layer.name));
        b.node(
            "Transpose",
            &format!("{}/{key}", layer.name),
            vec![input.name.clone()],
            vec![out.clone()],
            vec![ints("perm", &perm)],
        );
        operands.push(out);
    }
    b.node("MatMul", &layer.name, operands, outputs.to_vec(), vec![]);
    Ok(())
}

/// A 2-D constant transposed.
fn transposed(c: &Constant) -> Constant {
    let (rows, cols) = (c.dims[0], c.dims[1]);
    let size = c.element.size();
    let mut bytes = vec![0; c.bytes.len()];
    for r in 0..rows {
        for k in 0..cols {
            let from = (r * cols + k) * size;
            let to = (k * rows + r) * size;
            bytes[to..to + size].copy_from_slice(&c.bytes[from..from + size]);
        }
    }
    Constant {
        element: c.element,
        dims: vec![cols, rows],
        bytes: bytes.into(),
    }
}

/// Gemm (alpha = beta = 1) and MatMul → MatMul with its transposes, then Add of Gemm's C.
fn write(w: &mut Writer, n: &OnnxNode) -> Result<(), IrError> {
    let (node, name, output) = (n.node, n.name.as_str(), n.output.as_str());
    let gemm = node.op_type.as_deref() == Some("Gemm");
    if gemm
        && (attr::float(node, "alpha").unwrap_or(1.0) != 1.0
            || attr::float(node, "beta").unwrap_or(1.0) != 1.0)
    {
        return Err(unwritable(&format!(
            "Gemm '{name}' with alpha or beta other than 1"
        )));
    }
    let [a, b] = [0, 1].map(|i| node.input.get(i).cloned().unwrap_or_default());
    let rank = w.rank(&a);
    let ports = [w.source(&a)?, w.source(&b)?];
    let data = [
        (
            "transpose_a",
            (attr::int(node, "transA").unwrap_or(0) != 0).to_string(),
        ),
        (
            "transpose_b",
            (attr::int(node, "transB").unwrap_or(0) != 0).to_string(),
        ),
    ];
    let bias = node.input.get(2).filter(|c| gemm && !c.is_empty()).cloned();
    let mm_out = if bias.is_some() {
        format!("{name}/WithoutBiases")
    } else {
        output.to_owned()
    };
    let id = w.layer(
        if bias.is_some() { &mm_out } else { name },
        "MatMul",
        &data,
        &ports,
        &[("FP32", Some(mm_out.clone()))],
    );
    w.define(&mm_out, id, 0);
    if let Some(c) = bias {
        let ports = [w.source(&mm_out)?, w.source(&c)?];
        single(
            w,
            name,
            "Add",
            &[("auto_broadcast", "numpy".into())],
            &ports,
            output,
        );
    }
    w.set_rank(output, if gemm { Some(2) } else { rank });
    Ok(())
}
