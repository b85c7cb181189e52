//! The layers the kernel model applies to: their weights laid out along the kernel's reduction axis, the
//! activation codes the kernel sees, and the geometry needed to find, for each output value, the activations
//! each weight pair multiplies.

use aquant_onnx::NodeProto;
use serde::Serialize;

use super::conv::{ConvGeometry, Windows};
use super::kernel::{count_line, count_output, risky_pairs, Counts, RiskyPair, StaticRisk};
use crate::error::{Error, Result};
use crate::ops::Reduction;
use crate::tensor::Tensor;

/// Which ONNX Runtime (MLAS) kernel computes a layer on x86 without VNNI, as far as saturation goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelPath {
    /// u8×s8 GEMM or symmetric-conv kernel: pairs of products are added with `vpmaddubsw` (int16).
    PairwiseInt16,
    /// Depthwise convolution: products widened to 32 bits (`vpmovzxbd`/`vpmaddwd`), cannot saturate.
    Depthwise,
    /// Not an int8 u8×s8 kernel (16-bit quantizers, 3-D convolutions, transposed operands): not modelled.
    NotModelled(String),
}

/// How the kernel sees an activation: ONNX Runtime on x86 turns int8 activations into uint8 (zero point
/// + 128, `QDQS8ToU8Transformer`), so a signed code `q` reaches the kernel as `q + 128`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationCodes {
    /// Quantization scale.
    pub scale: f32,
    /// Zero point in the stored type.
    pub zero_point: i32,
    /// int8 storage (shifted by 128 on x86).
    pub signed: bool,
}

impl ActivationCodes {
    fn shift(&self) -> i32 {
        if self.signed {
            128
        } else {
            0
        }
    }

    /// The u8 code the kernel multiplies for the dequantized value `x` (exactly `(q − zp)·scale`).
    pub fn code(&self, x: f32) -> i32 {
        let (lo, hi) = if self.signed { (-128, 127) } else { (0, 255) };
        let q = (x / self.scale).round_ties_even() as i32 + self.zero_point;
        q.clamp(lo, hi) + self.shift()
    }

    /// The code ONNX Runtime pads convolutions with: the (shifted) zero point.
    pub fn padding(&self) -> i32 {
        self.zero_point + self.shift()
    }

    /// The u8 codes the kernel multiplies for a tapped activation: dequantized values, or the integers its
    /// `QuantizeLinear` stored (int8 shifted by 128); `None` for integers of the other signedness.
    fn codes(&self, x: &Tensor) -> Option<Vec<u8>> {
        // Every code is in 0..=255: int8 and uint8 clamp to their range, and int8 is shifted by 128.
        let byte = |code: i32| code as u8;
        match (x, self.signed) {
            (Tensor::F32(x), _) => Some(x.iter().map(|&v| byte(self.code(v))).collect()),
            (Tensor::U8(q), false) => Some(
                q.as_slice()
                    .map_or_else(|| q.iter().copied().collect(), <[u8]>::to_vec),
            ),
            (Tensor::I8(q), true) => Some(q.iter().map(|&q| byte(q as i32 + 128)).collect()),
            _ => None,
        }
    }
}

/// Where the reduction axis comes from.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Conv(ConvGeometry),
    /// MatMul/Gemm: the activation's last axis, of length `k`.
    Dense {
        k: usize,
    },
}

/// The tensors a layer's activation input can be observed in.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The dequantized activation.
    pub dequantized: String,
    /// Its integer codes, where a `QuantizeLinear` of the model writes them: an engine that keeps quantized
    /// values when they are tapped is observed there, its fused integer kernels left whole (and no codes are
    /// recomputed from floats).
    pub stored: Option<String>,
}

impl Observed {
    /// A dequantized activation with no stored codes to observe.
    pub fn dequantized(name: impl Into<String>) -> Observed {
        Observed {
            dequantized: name.into(),
            stored: None,
        }
    }
}

/// One Conv/MatMul/Gemm as the kernel computes it.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Node name.
    pub node: String,
    /// ONNX op type.
    pub op_type: String,
    /// Where its activation input is observed.
    pub observed: Observed,
    /// The activation's codes.
    pub act: ActivationCodes,
    /// The kernel.
    pub path: KernelPath,
    shape: Shape,
    /// What the weights alone say. The weights themselves are not kept (as `i32` codes they would weigh as
    /// much as the FP32 model, issue #27): measuring needs only the risky pairs.
    static_risk: StaticRisk,
    /// Weights per output channel along the reduction axis.
    reduction_len: usize,
    /// Per output channel: the pairs that can saturate.
    risky: Vec<Vec<RiskyPair>>,
}

impl Layer {
    /// The weights-only worst case.
    pub fn static_risk(&self) -> StaticRisk {
        self.static_risk
    }

    /// Whether measuring can find anything (some pair can saturate on a modelled kernel).
    pub fn needs_data(&self) -> bool {
        self.path == KernelPath::PairwiseInt16 && self.risky.iter().any(|r| !r.is_empty())
    }

    /// The tensor to observe: the stored codes where `backend` keeps them when tapped, else the dequantized
    /// activation.
    pub fn tapped(&self, keeps_quantized_values: bool) -> &str {
        match &self.observed.stored {
            Some(stored) if keeps_quantized_values => stored,
            _ => &self.observed.dequantized,
        }
    }

    /// Counts saturation on one batch of the observed tensor (dequantized values or stored codes).
    pub fn measure(&self, x: &Tensor) -> Result<Counts> {
        let codes = self.act.codes(x).ok_or_else(|| {
            Error::data(format!(
                "saturation analysis of node '{}' ({}): {} activation codes for a{} quantizer",
                self.node,
                self.op_type,
                x.dtype_name(),
                if self.act.signed { "n int8" } else { " uint8" }
            ))
        })?;
        let shape = x.shape();
        match &self.shape {
            Shape::Dense { k } => self.measure_dense(&codes, shape, *k),
            Shape::Conv(g) => self.measure_conv(&codes, shape, g),
        }
    }

    fn measure_dense(&self, codes: &[u8], shape: &[usize], k: usize) -> Result<Counts> {
        if shape.last() != Some(&k) {
            return Err(self.shape_error(shape));
        }
        let rows = codes.len() / k.max(1);
        let pairs_per_output = k.div_ceil(2) as u64;
        let mut counts = Counts::default();
        for r in 0..rows {
            let a = &codes[r * k..(r + 1) * k];
            for risky in &self.risky {
                let (hit, n) = count_output(risky, |i| a[i] as i32);
                counts.saturated_outputs += hit as u64;
                counts.saturated_pairs += n;
            }
        }
        counts.outputs = (rows * self.risky.len()) as u64;
        counts.pairs = counts.outputs * pairs_per_output;
        Ok(counts)
    }

    fn measure_conv(&self, codes: &[u8], shape: &[usize], g: &ConvGeometry) -> Result<Counts> {
        let (n, c, h, w) = match *shape {
            [n, c, h, w] => (n, c, h, w),
            [n, c, w] => (n, c, 1, w),
            _ => return Err(self.shape_error(shape)),
        };
        let m = self.risky.len();
        let windows = Windows::new(g, c, [h, w]);
        if !c.is_multiple_of(g.group)
            || !m.is_multiple_of(g.group)
            || self.reduction_len != windows.kernel_len()
        {
            return Err(self.shape_error(shape));
        }
        let [oh, ow] = windows.out;
        let mut counts = Counts {
            outputs: (n * m * oh * ow) as u64,
            pairs: (n * m * oh * ow * windows.kernel_len().div_ceil(2)) as u64,
            ..Default::default()
        };
        if oh * ow == 0 {
            return Ok(counts);
        }
        let m_per_group = m / g.group;
        let pad = self.act.padding() as u8;
        // Whether each output value of the channel being counted has a saturated pair.
        let mut hit = vec![false; oh * ow];
        for sample in codes.chunks_exact((c * h * w).max(1)).take(n) {
            let padded = windows.padded(sample, c, pad);
            for (oc, risky) in self.risky.iter().enumerate() {
                if risky.is_empty() {
                    continue;
                }
                let base_c = (oc / m_per_group) * windows.cg;
                hit.fill(false);
                for pair in risky {
                    let [a, b] = [pair.k, pair.k + 1].map(|k| windows.offset(base_c, k));
                    for (oy, line) in hit.chunks_exact_mut(ow).enumerate() {
                        let corner = windows.corner(oy);
                        counts.saturated_pairs += count_line(
                            pair,
                            &padded[corner + a..],
                            &padded[corner + b..],
                            windows.column_stride(),
                            line,
                        );
                    }
                }
                counts.saturated_outputs += hit.iter().filter(|&&h| h).count() as u64;
            }
        }
        Ok(counts)
    }

    fn shape_error(&self, shape: &[usize]) -> Error {
        Error::data(format!(
            "saturation analysis of node '{}' ({}): unexpected input shape {shape:?}",
            self.node, self.op_type
        ))
    }
}

/// Lays the weights out as the kernel reduces them (`reduction`, from the op's family) and finds the pairs at
/// risk.
pub(super) fn layer(
    node: &NodeProto,
    reduction: Reduction,
    observed: Observed,
    act: ActivationCodes,
    dims: &[usize],
    codes: Vec<i32>,
    unmodelled: Option<String>,
) -> Result<Layer> {
    let (shape, rows, path) = match reduction {
        Reduction::Convolution => conv_rows(node, dims, &codes),
        Reduction::Dense {
            transposed_activation,
            transposed_weight,
        } => dense_rows(dims, &codes, transposed_weight, transposed_activation),
    };
    let path = match unmodelled {
        Some(why) => KernelPath::NotModelled(why),
        None => path,
    };
    let risky = if path == KernelPath::PairwiseInt16 {
        rows.iter().map(|r| risky_pairs(r)).collect()
    } else {
        vec![Vec::new(); rows.len()]
    };
    Ok(Layer {
        node: node.name.clone().unwrap_or_default(),
        op_type: node.op_type.clone().unwrap_or_default(),
        observed,
        act,
        path,
        shape,
        static_risk: StaticRisk::of(rows.iter().map(Vec::as_slice)),
        reduction_len: rows.first().map_or(0, Vec::len),
        risky,
    })
}

fn conv_rows(
    node: &NodeProto,
    dims: &[usize],
    codes: &[i32],
) -> (Shape, Vec<Vec<i32>>, KernelPath) {
    let not = |why: &str| {
        (
            Shape::Dense { k: 0 },
            Vec::new(),
            KernelPath::NotModelled(why.to_string()),
        )
    };
    let (m, cg, kh, kw) = match *dims {
        [m, cg, kh, kw] => (m, cg, kh, kw),
        [m, cg, kw] => (m, cg, 1, kw),
        _ => return not("only 1-D and 2-D convolutions are modelled"),
    };
    let geometry = ConvGeometry::of(node, [kh, kw]);
    let group = geometry.group;
    let spatial = kh * kw;
    // OIHW → per output channel, (ky, kx, ic) order.
    let rows: Vec<Vec<i32>> = (0..m)
        .map(|o| {
            let mut row = Vec::with_capacity(cg * spatial);
            for s in 0..spatial {
                for ic in 0..cg {
                    row.push(codes[(o * cg + ic) * spatial + s]);
                }
            }
            row
        })
        .collect();
    let path = if cg == 1 && group > 1 && m == group {
        KernelPath::Depthwise
    } else {
        KernelPath::PairwiseInt16
    };
    (Shape::Conv(geometry), rows, path)
}

fn dense_rows(
    dims: &[usize],
    codes: &[i32],
    trans_b: bool,
    trans_a: bool,
) -> (Shape, Vec<Vec<i32>>, KernelPath) {
    let [d0, d1] = *dims else {
        return (
            Shape::Dense { k: 0 },
            Vec::new(),
            KernelPath::NotModelled("only 2-D weights are modelled".into()),
        );
    };
    if trans_a {
        return (
            Shape::Dense { k: 0 },
            Vec::new(),
            KernelPath::NotModelled("transposed activations (transA) are not modelled".into()),
        );
    }
    let (k, n) = if trans_b { (d1, d0) } else { (d0, d1) };
    let rows = (0..n)
        .map(|col| {
            (0..k)
                .map(|i| {
                    if trans_b {
                        codes[col * k + i]
                    } else {
                        codes[i * n + col]
                    }
                })
                .collect()
        })
        .collect();
    (Shape::Dense { k }, rows, KernelPath::PairwiseInt16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aquant_onnx::attr;
    use ndarray::ArrayD;

    fn conv(weights: Vec<i32>, dims: &[usize], signed: bool) -> Layer {
        let node = NodeProto {
            op_type: Some("Conv".into()),
            name: Some("conv".into()),
            ..Default::default()
        };
        let act = ActivationCodes {
            scale: 1.0,
            zero_point: 0,
            signed,
        };
        layer(
            &node,
            Reduction::Convolution,
            Observed::dequantized("x"),
            act,
            dims,
            weights,
            None,
        )
        .unwrap()
    }

    /// A 1×2 kernel over 3 channels: the reduction order is (kx, c), so the pairs are (c0 kx0, c1 kx0),
    /// (c2 kx0, c0 kx1), (c1 kx1, c2 kx1). Only the middle pair has large same-sign weights.
    #[test]
    fn conv_pairs_follow_the_nhwc_im2col_order() {
        // OIHW [1, 3, 1, 2]: w[c][kx].
        let mut w = vec![1; 6];
        w[2 * 2] = 127; // c2, kx0
        w[1] = 127; // c0, kx1
        let layer = conv(w, &[1, 3, 1, 2], false);
        assert_eq!(layer.static_risk().risky_pairs, 1);
        assert_eq!(layer.static_risk().pairs, 3);
        // NCHW [1, 3, 1, 2]: x[c][x].
        let x = |c2x0: f32, c0x1: f32| {
            Tensor::F32(
                ArrayD::from_shape_vec(vec![1, 3, 1, 2], vec![0.0, c0x1, 0.0, 0.0, c2x0, 0.0])
                    .unwrap(),
            )
        };
        let counts = layer.measure(&x(200.0, 200.0)).unwrap();
        assert_eq!(
            counts,
            Counts {
                outputs: 1,
                saturated_outputs: 1,
                pairs: 3,
                saturated_pairs: 1
            },
            "200·127 + 200·127 = 50800"
        );
        let counts = layer.measure(&x(100.0, 100.0)).unwrap();
        assert_eq!(counts.saturated_pairs, 0, "25400 fits");
        // The same weights in channel-major order would pair (c0 kx0, c0 kx1): no saturation found.
        let counts = layer.measure(&x(200.0, 1.0)).unwrap();
        assert_eq!(counts.saturated_pairs, 0);
    }

    #[test]
    fn signed_activations_reach_the_kernel_shifted_by_128_and_pad_with_it() {
        // One channel, kernel 1×2, weights 127, 127: a pair of codes (a, b) saturates when 127·(a + b) > 32767.
        let layer = conv(vec![127, 127], &[1, 1, 1, 2], true);
        let x = |a: f32, b: f32| {
            Tensor::F32(ArrayD::from_shape_vec(vec![1, 1, 1, 2], vec![a, b]).unwrap())
        };
        // Real zero is code 128: 127·256 = 32512 fits, 127·(130 + 129) = 32893 does not.
        assert_eq!(layer.measure(&x(0.0, 0.0)).unwrap().saturated_pairs, 0);
        assert_eq!(layer.measure(&x(2.0, 1.0)).unwrap().saturated_pairs, 1);
        assert_eq!(layer.measure(&x(-100.0, 100.0)).unwrap().saturated_pairs, 0);
        let unsigned = conv(vec![127, 127], &[1, 1, 1, 2], false);
        assert_eq!(unsigned.measure(&x(2.0, 1.0)).unwrap().saturated_pairs, 0);
        // The stored codes say the same as the dequantized values (scale 1, zero point 0).
        let stored = |a: i8, b: i8| {
            Tensor::I8(ArrayD::from_shape_vec(vec![1, 1, 1, 2], vec![a, b]).unwrap())
        };
        assert_eq!(layer.measure(&stored(2, 1)).unwrap().saturated_pairs, 1);
        assert_eq!(layer.measure(&stored(0, 0)).unwrap().saturated_pairs, 0);
        let unsigned_codes =
            Tensor::U8(ArrayD::from_shape_vec(vec![1, 1, 1, 2], vec![2, 1]).unwrap());
        assert!(
            layer.measure(&unsigned_codes).is_err(),
            "uint8 codes for an int8 quantizer are a model error, not silently shifted"
        );
        assert_eq!(
            unsigned.measure(&unsigned_codes).unwrap().saturated_pairs,
            0
        );
        assert_eq!(
            ActivationCodes {
                scale: 1.0,
                zero_point: 0,
                signed: true
            }
            .padding(),
            128
        );
    }

    /// The geometry of the convolution [`conv_counts_equal_a_direct_count_of_every_pair`] counts: strides,
    /// begin pads and dilations (rows, columns); the end pads are one fewer than the begin pads.
    const STRIDES: [usize; 2] = [2, 1];
    const PADS: [usize; 2] = [1, 2];
    const DILATIONS: [usize; 2] = [1, 2];

    /// The test convolution's shapes: samples, groups, input channels per group, output channels, kernel side,
    /// input height and width.
    struct TestConv {
        n: usize,
        groups: usize,
        cg: usize,
        m: usize,
        k: usize,
        hw: [usize; 2],
    }

    impl TestConv {
        fn out(&self) -> [usize; 2] {
            let [h, w] = self.hw;
            let spans = [0, 1].map(|a| DILATIONS[a] * (self.k - 1) + 1);
            // End pads: PADS[0] - 1 rows and PADS[1] - 1 columns.
            [
                (h + 2 * PADS[0] - 1 - spans[0]) / STRIDES[0] + 1,
                (w + 2 * PADS[1] - 1 - spans[1]) / STRIDES[1] + 1,
            ]
        }

        /// Every output's every weight pair, its activations looked up one by one by the definition of a
        /// convolution (the padding code outside the input).
        fn count_directly(&self, rows: &[Vec<i32>], act: ActivationCodes, x: &[f32]) -> Counts {
            let TestConv {
                n,
                groups,
                cg,
                m,
                k,
                hw: [h, w],
            } = *self;
            let code = |b: usize, c: usize, y: isize, x_: isize| -> i32 {
                if y < 0 || x_ < 0 || y >= h as isize || x_ >= w as isize {
                    return act.padding();
                }
                act.code(x[((b * groups * cg + c) * h + y as usize) * w + x_ as usize])
            };
            let [oh, ow] = self.out();
            let mut direct = Counts::default();
            for b in 0..n {
                for (oc, row) in rows.iter().enumerate() {
                    let group = oc / (m / groups);
                    for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
                        let activation = |r: usize| {
                            let (ic, kx, ky) = (r % cg, (r / cg) % k, r / cg / k);
                            let y =
                                (oy * STRIDES[0] + ky * DILATIONS[0]) as isize - PADS[0] as isize;
                            let x_ =
                                (ox * STRIDES[1] + kx * DILATIONS[1]) as isize - PADS[1] as isize;
                            code(b, group * cg + ic, y, x_)
                        };
                        let hits = (0..row.len() / 2)
                            .filter(|j| {
                                super::super::kernel::can_saturate(row[2 * j], row[2 * j + 1])
                            })
                            .filter(|j| {
                                let sum = activation(2 * j) * row[2 * j]
                                    + activation(2 * j + 1) * row[2 * j + 1];
                                !(i16::MIN as i32..=i16::MAX as i32).contains(&sum)
                            })
                            .count() as u64;
                        direct.saturated_outputs += (hits > 0) as u64;
                        direct.saturated_pairs += hits;
                    }
                }
            }
            direct.outputs = (n * m * oh * ow) as u64;
            direct
        }
    }

    /// The convolution's counts, from windows decoded once per channel, equal a direct count by the
    /// definition ([`TestConv::count_directly`]). Both the windows inside the input and those over its border
    /// are counted.
    #[test]
    fn conv_counts_equal_a_direct_count_of_every_pair() {
        let conv = TestConv {
            n: 2,
            groups: 2,
            cg: 3,
            m: 4,
            k: 3,
            hw: [7, 9],
        };
        let mut seed = 7u32;
        let mut next = |range: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) % range
        };
        let weights: Vec<i32> = (0..conv.m * conv.cg * conv.k * conv.k)
            .map(|_| next(255) as i32 - 127)
            .collect();
        let ints = |name: &str, ints: Vec<usize>| aquant_onnx::AttributeProto {
            name: Some(name.into()),
            ints: ints.into_iter().map(|i| i as i64).collect(),
            r#type: Some(aquant_onnx::proto::attribute_proto::AttributeType::Ints as i32),
            ..Default::default()
        };
        let node = NodeProto {
            op_type: Some("Conv".into()),
            name: Some("conv".into()),
            attribute: vec![
                attr::make_int("group", conv.groups as i64),
                ints("strides", STRIDES.to_vec()),
                ints("pads", vec![PADS[0], PADS[1], PADS[0] - 1, PADS[1] - 1]),
                ints("dilations", DILATIONS.to_vec()),
            ],
            ..Default::default()
        };
        let act = ActivationCodes {
            scale: 1.0,
            zero_point: 3,
            signed: false,
        };
        let dims = [conv.m, conv.cg, conv.k, conv.k];
        let (_, rows, _) = conv_rows(&node, &dims, &weights);
        let layer = layer(
            &node,
            Reduction::Convolution,
            Observed::dequantized("x"),
            act,
            &dims,
            weights,
            None,
        )
        .unwrap();
        let [h, w] = conv.hw;
        let x: Vec<f32> = (0..conv.n * conv.groups * conv.cg * h * w)
            .map(|_| next(256) as f32 - 3.0)
            .collect();
        let shape = vec![conv.n, conv.groups * conv.cg, h, w];
        let measured = layer
            .measure(&Tensor::F32(
                ArrayD::from_shape_vec(shape, x.clone()).unwrap(),
            ))
            .unwrap();
        let direct = conv.count_directly(&rows, act, &x);
        assert!(
            direct.saturated_pairs > 0,
            "the weights and codes make some pairs saturate"
        );
        let key = |c: &Counts| (c.saturated_outputs, c.saturated_pairs, c.outputs);
        assert_eq!(key(&measured), key(&direct));
    }

    #[test]
    fn depthwise_convolutions_are_not_pairwise() {
        let node = NodeProto {
            op_type: Some("Conv".into()),
            name: Some("dw".into()),
            attribute: vec![attr::make_int("group", 2)],
            ..Default::default()
        };
        let act = ActivationCodes {
            scale: 1.0,
            zero_point: 0,
            signed: false,
        };
        let layer = layer(
            &node,
            Reduction::Convolution,
            Observed::dequantized("x"),
            act,
            &[2, 1, 1, 2],
            vec![127; 4],
            None,
        )
        .unwrap();
        assert_eq!(layer.path, KernelPath::Depthwise);
        assert!(!layer.needs_data());
    }

    #[test]
    fn gemm_reduces_along_k_with_trans_b() {
        let node = NodeProto {
            op_type: Some("Gemm".into()),
            name: Some("fc".into()),
            attribute: vec![attr::make_int("transB", 1)],
            ..Default::default()
        };
        let act = ActivationCodes {
            scale: 1.0,
            zero_point: 0,
            signed: false,
        };
        // B is [N = 2, K = 4]: row 0 risky on its first pair, row 1 on its second.
        let w = vec![127, 127, 0, 0, 0, 0, -127, -127];
        let reduction = crate::ops::lookup("Gemm")
            .unwrap()
            .reduction(&node)
            .unwrap();
        let layer = layer(
            &node,
            reduction,
            Observed::dequantized("x"),
            act,
            &[2, 4],
            w,
            None,
        )
        .unwrap();
        let x = Tensor::F32(
            ArrayD::from_shape_vec(vec![1, 4], vec![255.0, 255.0, 10.0, 10.0]).unwrap(),
        );
        let counts = layer.measure(&x).unwrap();
        assert_eq!(
            (counts.outputs, counts.saturated_outputs, counts.pairs),
            (2, 1, 4)
        );
    }
}
