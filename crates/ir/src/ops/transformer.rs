//! The ops OpenVINO fuses transformer encoders into (MVN for LayerNorm, Gelu, ScaledDotProductAttention),
//! spelt with the ONNX ops exporters write for them: MVN → LayerNormalization, Gelu → Div, Erf, Add and Mul,
//! ScaledDotProductAttention → Transpose, MatMul, Mul, (Add), Softmax and MatMul. Read only: written back, a
//! spelling is its single ops, each by its family (Erf, MatMul, Softmax…); LayerNormalization has no IR form.

use super::{constant, float, int, ints, Family};
use crate::consts::{Constant, Element};
use crate::graph::{Builder, Input};
use crate::xml::Layer;
use crate::IrError;

/// The IR layer types this family reads and the ONNX op types it writes.
pub const FAMILY: Family = Family {
    reads: &[
        ("MVN", read_mvn),
        ("Gelu", read_gelu),
        ("ScaledDotProductAttention", read_attention),
    ],
    writes: &[],
};

/// MVN over the last axis with the epsilon inside the square root (what OpenVINO makes of a LayerNorm) →
/// LayerNormalization with unit scale and zero bias (the IR's own Multiply and Add follow).
fn read_mvn(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if inputs.len() != 2 {
        return Err(layer.malformed("MVN (opset 6) has two inputs"));
    }
    let rank = inputs[0].dims.len() as i64;
    let axes = constant(layer, b, &inputs[1], "axes")?.ints();
    let last = axes.len() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
    let inside = layer
        .data
        .get("eps_mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("inside_sqrt"));
    if !last || !inside || !layer.flag("normalize_variance", true)? {
        return Err(layer.malformed(
            "only MVN over the last axis, normalizing the variance with eps inside the square root, is supported",
        ));
    }
    let width = *inputs[0]
        .dims
        .last()
        .filter(|&&d| d > 0)
        .ok_or_else(|| layer.malformed("the last axis is dynamic"))? as usize;
    let scale = b.add_constant(
        &format!("{}/scale", layer.name),
        Constant::f32s(&[width], &vec![1.0; width]),
    );
    let bias = b.add_constant(
        &format!("{}/bias", layer.name),
        Constant::f32s(&[width], &vec![0.0; width]),
    );
    b.node(
        "LayerNormalization",
        &layer.name,
        vec![inputs[0].name.clone(), scale, bias],
        outputs.to_vec(),
        vec![int("axis", -1), float("epsilon", layer.float("eps")?)],
    );
    Ok(())
}

/// Gelu (erf form) spelt 0.5·x·(1 + erf(x/√2)); the tanh approximation is refused.
fn read_gelu(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    let mode = layer
        .data
        .get("approximation_mode")
        .map_or("erf", String::as_str);
    if !mode.eq_ignore_ascii_case("erf") {
        return Err(layer.malformed(&format!("Gelu approximation '{mode}' is not supported")));
    }
    let name = &layer.name;
    let x = inputs
        .first()
        .ok_or_else(|| layer.malformed("Gelu has one input"))?
        .name
        .clone();
    let sqrt2 = b.add_constant(
        &format!("{name}/sqrt2"),
        Constant::f32s(&[], &[std::f32::consts::SQRT_2]),
    );
    let one = b.add_constant(&format!("{name}/one"), Constant::f32s(&[], &[1.0]));
    let half = b.add_constant(&format!("{name}/half"), Constant::f32s(&[], &[0.5]));
    let [scaled, erf, shifted, halved] =
        ["scaled", "erf", "shifted", "halved"].map(|s| b.fresh(&format!("{name}/{s}")));
    b.node(
        "Div",
        &format!("{name}/div"),
        vec![x.clone(), sqrt2],
        vec![scaled.clone()],
        vec![],
    );
    b.node(
        "Erf",
        &format!("{name}/erf"),
        vec![scaled],
        vec![erf.clone()],
        vec![],
    );
    b.node(
        "Add",
        &format!("{name}/add"),
        vec![erf, one],
        vec![shifted.clone()],
        vec![],
    );
    b.node(
        "Mul",
        &format!("{name}/half"),
        vec![x, half],
        vec![halved.clone()],
        vec![],
    );
    b.node("Mul", name, vec![halved, shifted], outputs.to_vec(), vec![]);
    Ok(())
}

/// ScaledDotProductAttention (what OpenVINO fuses an encoder's attention into), spelt as exporters write it:
/// softmax(Q·Kᵀ·scale + mask)·V, the scale 1/√d unless given; a causal or boolean mask is refused.
fn read_attention(
    layer: &Layer,
    inputs: &[Input],
    outputs: &[String],
    b: &mut Builder,
) -> Result<(), IrError> {
    if layer.flag("causal", false)? {
        return Err(layer.malformed("causal attention is not supported"));
    }
    let [query, key, value, rest @ ..] = inputs else {
        return Err(layer.malformed("attention needs query, key and value"));
    };
    let rank = key.dims.len();
    if rank < 2 {
        return Err(layer.malformed("the key has rank below 2"));
    }
    let name = &layer.name;
    let scale = attention_scale(layer, query, rest.get(1), b)?;
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(rank - 2, rank - 1);
    let [key_t, scores, scaled, masked] =
        ["key_t", "scores", "scaled", "masked"].map(|s| b.fresh(&format!("{name}/{s}")));
    b.node(
        "Transpose",
        &format!("{name}/key_t"),
        vec![key.name.clone()],
        vec![key_t.clone()],
        vec![ints("perm", &perm)],
    );
    b.node(
        "MatMul",
        &format!("{name}/scores"),
        vec![query.name.clone(), key_t],
        vec![scores.clone()],
        vec![],
    );
    b.node(
        "Mul",
        &format!("{name}/scaled"),
        vec![scores, scale],
        vec![scaled.clone()],
        vec![],
    );
    let logits = match rest.first() {
        Some(mask) => add_mask(layer, mask, scaled, masked, b)?,
        None => scaled,
    };
    let probs = b.fresh(&format!("{name}/probs"));
    b.node(
        "Softmax",
        &format!("{name}/probs"),
        vec![logits],
        vec![probs.clone()],
        vec![int("axis", -1)],
    );
    b.node(
        "MatMul",
        name,
        vec![probs, value.name.clone()],
        outputs.to_vec(),
        vec![],
    );
    Ok(())
}

/// The attention's scale: its input when given, else a constant 1/√d of the query's (static) head size d.
fn attention_scale(
    layer: &Layer,
    query: &Input,
    given: Option<&Input>,
    b: &mut Builder,
) -> Result<String, IrError> {
    Ok(match given {
        Some(scale) => scale.name.clone(),
        None => {
            let depth = *query
                .dims
                .last()
                .filter(|&&d| d > 0)
                .ok_or_else(|| layer.malformed("the head size is dynamic"))?;
            b.add_constant(
                &format!("{}/scale", layer.name),
                Constant::f32s(&[], &[1.0 / (depth as f32).sqrt()]),
            )
        }
    })
}

/// `scaled` + `mask` into tensor `masked`, returned; a boolean mask (by its port precision or its constant's
/// element type) is refused.
fn add_mask(
    layer: &Layer,
    mask: &Input,
    scaled: String,
    masked: String,
    b: &mut Builder,
) -> Result<String, IrError> {
    let boolean = mask
        .precision
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("BOOL"));
    if boolean
        || b.constant(&mask.name)
            .is_some_and(|c| c.element == Element::Boolean)
    {
        return Err(layer.malformed("a boolean attention mask is not supported"));
    }
    b.node(
        "Add",
        &format!("{}/masked", layer.name),
        vec![scaled, mask.name.clone()],
        vec![masked.clone()],
        vec![],
    );
    Ok(masked)
}
