//! tract runs the evaluation form of an integer kernel (`QLinearConv`) exactly as the kernel computes it: an
//! exact integer sum, then `clamp(round_half_even(f32(acc) · M))`. tract's optimiser folds a per-channel `Mul`
//! that follows a `Conv` into its weights; folded, the multiplier would enter every product and the sum would
//! no longer be exact, flipping the rounding of accumulators that land near a half. The multiplier here is
//! ≈ 0.1, so every accumulator ending in 5 lands within a rounding error of a half: a folded multiplier
//! shows up as wrong integers. Integer arithmetic is CPU-independent, so the test holds on every machine.

use std::collections::{BTreeMap, BTreeSet};

use aquant::builder::ModelBuilder;
use aquant::numerics::{Mode, QuantSpec, Quantizer};
use aquant::quantize::{place, ModelForm, QuantizationParams, QuantizedModel, RestoreMode};
use aquant::{Backend, Graph, Tensor};
use aquant_tract::TractBackend;
use ndarray::{ArrayD, IxDyn};

const CHANNELS_IN: usize = 4;
const CHANNELS_OUT: usize = 8;
const SIDE: usize = 12;
const KERNEL: usize = 3;

/// A deterministic stream of integers in `[-bound, bound]`.
fn integers(count: usize, bound: i32, seed: u64) -> Vec<i32> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % (2 * bound as u64 + 1)) as i32 - bound
        })
        .collect()
}

/// x → conv (per-channel weights, no bias) → relu → r → conv2 → y, quantized by hand: x signed, r unsigned
/// with zero point 0 (the Relu is removed, conv's accumulator is requantized directly into r's integers).
fn quantized_conv() -> (QuantizedModel, Vec<f32>, [Quantizer; 2]) {
    let weight_scale = 12.7f32 / 127.0;
    let mut w: Vec<f32> = integers(CHANNELS_OUT * CHANNELS_IN * KERNEL * KERNEL, 127, 7)
        .into_iter()
        .map(|q| q as f32 * weight_scale)
        .collect();
    let per_channel = CHANNELS_IN * KERNEL * KERNEL;
    for c in 0..CHANNELS_OUT {
        w[c * per_channel] = 12.7; // every channel's range is ±12.7: its scale is ≈ 0.1
    }
    let dims = [CHANNELS_OUT, CHANNELS_IN, KERNEL, KERNEL];
    let out = SIDE - KERNEL + 1;
    let model = ModelBuilder::new(13)
        .input("x", &[None, Some(CHANNELS_IN), Some(SIDE), Some(SIDE)])
        .initializer("conv.w", &dims, &w)
        .node("Conv", "conv", &["x", "conv.w"], &["c"])
        .node("Relu", "relu", &["c"], &["r"])
        .initializer("conv2.w", &[1, CHANNELS_OUT, 1, 1], &[1.0; CHANNELS_OUT])
        .node("Conv", "conv2", &["r", "conv2.w"], &["y"])
        .output("y", &[None, Some(1), Some(out), Some(out)])
        .build();
    let graph = Graph::new(model).unwrap();
    let placement = place(&graph, &QuantizationParams::default()).unwrap();
    let spec = |signed| QuantSpec::new(8, Mode::Symmetric, signed, false).unwrap();
    let range = |signed, lo: f32, hi: f32| Quantizer::from_range(&spec(signed), &[lo], &[hi], None);
    let (x, r) = (
        range(true, -12.7, 12.7).unwrap(),
        range(false, 0.0, 25.5).unwrap(),
    );
    let activations = BTreeMap::from([("x".to_string(), x.clone()), ("r".to_string(), r.clone())]);
    let narrow = QuantSpec::new(8, Mode::Symmetric, true, true).unwrap();
    let (lo, hi) = (vec![-12.7; CHANNELS_OUT], vec![12.7; CHANNELS_OUT]);
    let weights = BTreeMap::from([
        (
            "conv".to_string(),
            Quantizer::from_range(&narrow, &lo, &hi, Some(0)).unwrap(),
        ),
        (
            "conv2".to_string(),
            Quantizer::from_range(&narrow, &[-1.0], &[1.0], Some(0)).unwrap(),
        ),
    ]);
    let q = QuantizedModel::new(graph, placement, activations, weights, BTreeMap::new()).unwrap();
    (q, w, [x, r])
}

#[test]
fn tract_sums_an_integer_kernel_exactly_and_requantizes_it_once() {
    let (q, w, [x_params, r_params]) = quantized_conv();
    let evaluation = q
        .build(
            &BTreeSet::new(),
            RestoreMode::default(),
            ModelForm::Evaluation,
        )
        .unwrap();
    let integers_of_r = "r_fake_quant_clipped".to_string();
    let session = TractBackend::new()
        .prepare(&evaluation, std::slice::from_ref(&integers_of_r))
        .unwrap();

    let (sx, sy) = (x_params.scale[0], r_params.scale[0]);
    let conv = q.weight_params("conv").unwrap();
    let x_integers = integers(2 * CHANNELS_IN * SIDE * SIDE, 20, 11);
    let x = ArrayD::from_shape_vec(
        IxDyn(&[2, CHANNELS_IN, SIDE, SIDE]),
        x_integers.iter().map(|&k| k as f32 * sx).collect(),
    )
    .unwrap();
    let outputs = session.run(vec![Tensor::F32(x.clone())]).unwrap();
    let tract = outputs[1].as_f32(&integers_of_r).unwrap();

    let out = SIDE - KERNEL + 1;
    let (mut checked, mut near_half) = (0, 0);
    for (index, &got) in tract.indexed_iter() {
        let (n, c, i, j) = (index[0], index[1], index[2], index[3]);
        let mut acc = 0i32;
        for ci in 0..CHANNELS_IN {
            for (ki, kj) in (0..KERNEL).flat_map(|ki| (0..KERNEL).map(move |kj| (ki, kj))) {
                let qx = x_params.quantize(x[[n, ci, i + ki, j + kj]], 0);
                let wi = ((c * CHANNELS_IN + ci) * KERNEL + ki) * KERNEL + kj;
                acc += qx * conv.quantize(w[wi], c);
            }
        }
        let scaled = acc as f32 * ((sx * conv.scale[c]) / sy);
        let expected = scaled.round_ties_even().clamp(0.0, 255.0);
        assert_eq!(
            got, expected,
            "output [{n}, {c}, {i}, {j}]: accumulator {acc}, kernel {expected}, tract {got}"
        );
        near_half += usize::from((scaled.fract().abs() - 0.5).abs() < 1e-3 && scaled > 0.0);
        checked += 1;
    }
    assert_eq!(checked, 2 * CHANNELS_OUT * out * out);
    assert!(
        near_half > 20,
        "only {near_half} accumulators near a half: the test would not see a folded multiplier"
    );
}
