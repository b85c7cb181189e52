//! The arithmetic of the non-VNNI kernel: which pairs of products can leave int16, and counting them.
//!
//! Everything here is integer arithmetic on the codes the kernel sees (u8 activations, s8 weights), so it is
//! exact and identical on every CPU.

use serde::Serialize;

/// The int16 range `vpmaddubsw` saturates to.
const I16_MIN: i32 = i16::MIN as i32;
const I16_MAX: i32 = i16::MAX as i32;
/// The largest u8 activation code.
const U8_MAX: i32 = u8::MAX as i32;

/// One pair of adjacent reduction-axis positions `(2j, 2j + 1)` whose weights can saturate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskyPair {
    /// Reduction index of the first product (the second is `k + 1`).
    pub k: usize,
    /// The two s8 weights.
    pub w: [i32; 2],
}

/// Whether `a0·w0 + a1·w1` can leave int16 for some u8 activations: only when the weights have the same sign
/// (otherwise the sum is bounded by one product, at most 255·128 = 32640) and 255·(|w0| + |w1|) > 32767, i.e.
/// |w0| + |w1| ≥ 129. Half-range weights (|w| ≤ 64) never can.
pub fn can_saturate(w0: i32, w1: i32) -> bool {
    let same_sign = (w0 > 0 && w1 > 0) || (w0 < 0 && w1 < 0);
    same_sign && U8_MAX * (w0.abs() + w1.abs()) > I16_MAX
}

/// The pair sum the kernel computes before saturating.
pub fn pair_sum(a: [i32; 2], w: [i32; 2]) -> i32 {
    a[0] * w[0] + a[1] * w[1]
}

/// Whether a pair sum leaves int16.
pub fn saturates(sum: i32) -> bool {
    !(I16_MIN..=I16_MAX).contains(&sum)
}

/// The risky pairs of one output channel's weights, laid out along the kernel's reduction axis. A trailing
/// odd element is paired with the zero padding of the packed weights and cannot saturate.
pub fn risky_pairs(weights: &[i32]) -> Vec<RiskyPair> {
    weights
        .chunks_exact(2)
        .enumerate()
        .filter(|(_, w)| can_saturate(w[0], w[1]))
        .map(|(j, w)| RiskyPair {
            k: 2 * j,
            w: [w[0], w[1]],
        })
        .collect()
}

/// What the weights alone say: how many pairs could saturate with the worst activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StaticRisk {
    /// Weight pairs (over all output channels).
    pub pairs: u64,
    /// Pairs that saturate when both activations are 255.
    pub risky_pairs: u64,
    /// The largest |pair sum| over all pairs when both activations are 255 (the int16 limit is 32767).
    pub worst_pair_sum: i32,
}

impl StaticRisk {
    /// The static risk of weights given as one row per output channel along the reduction axis.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a [i32]>) -> StaticRisk {
        let mut risk = StaticRisk::default();
        for row in rows {
            risk.pairs += row.len().div_ceil(2) as u64;
            for w in row.chunks(2) {
                let (w0, w1) = (w[0], w.get(1).copied().unwrap_or(0));
                if can_saturate(w0, w1) {
                    risk.risky_pairs += 1;
                }
                let worst = pair_sum([U8_MAX, U8_MAX], [w0.abs(), w1.abs()]);
                let worst = if (w0 > 0) == (w1 > 0) || w0 == 0 || w1 == 0 {
                    worst
                } else {
                    U8_MAX * w0.abs().max(w1.abs())
                };
                risk.worst_pair_sum = risk.worst_pair_sum.max(worst);
            }
        }
        risk
    }
}

/// Counts of saturation measured on data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Output values computed (samples × positions × output channels).
    pub outputs: u64,
    /// Output values whose sum includes at least one saturated pair.
    pub saturated_outputs: u64,
    /// Pair sums computed (outputs × ⌈K / 2⌉).
    pub pairs: u64,
    /// Pair sums that left int16.
    pub saturated_pairs: u64,
}

impl Counts {
    /// Adds another count.
    pub fn add(&mut self, other: Counts) {
        self.outputs += other.outputs;
        self.saturated_outputs += other.saturated_outputs;
        self.pairs += other.pairs;
        self.saturated_pairs += other.saturated_pairs;
    }

    /// Fraction of output values affected by saturation.
    pub fn output_rate(&self) -> f64 {
        ratio(self.saturated_outputs, self.outputs)
    }

    /// Fraction of pair sums that saturated.
    pub fn pair_rate(&self) -> f64 {
        ratio(self.saturated_pairs, self.pairs)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Counts saturation of one output value: `fetch(k)` gives the u8 activation code at reduction index `k`.
pub fn count_output(pairs: &[RiskyPair], fetch: impl Fn(usize) -> i32) -> (bool, u64) {
    let mut saturated = 0;
    for p in pairs {
        if saturates(pair_sum([fetch(p.k), fetch(p.k + 1)], p.w)) {
            saturated += 1;
        }
    }
    (saturated > 0, saturated)
}

/// Counts the saturated sums of `pair` along a line of output values, the hot path of a convolution:
/// output `i` multiplies `first[i·stride]` and `second[i·stride]`, and `hit[i]` is set where its sum saturates.
/// Risky pairs have weights of one sign, so the test is on magnitudes: `a0·|w0| + a1·|w1|` above 32767 (or
/// 32768 for negative weights, whose sum leaves int16 below −32768).
pub fn count_line(
    pair: &RiskyPair,
    first: &[u8],
    second: &[u8],
    stride: usize,
    hit: &mut [bool],
) -> u64 {
    let [w0, w1] = pair.w.map(i32::abs);
    let limit = if pair.w[0] > 0 { I16_MAX } else { -I16_MIN };
    let mut saturated = 0;
    let mut count = |(hit, (&a, &b)): (&mut bool, (&u8, &u8))| {
        let saturates = a as i32 * w0 + b as i32 * w1 > limit;
        *hit |= saturates;
        saturated += saturates as u64;
    };
    if stride == 1 {
        hit.iter_mut()
            .zip(first.iter().zip(second))
            .for_each(&mut count);
    } else {
        let first = first.iter().step_by(stride);
        let second = second.iter().step_by(stride);
        hit.iter_mut().zip(first.zip(second)).for_each(&mut count);
    }
    saturated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_sign_pairs_above_128_can_saturate() {
        assert!(can_saturate(127, 2));
        assert!(can_saturate(-65, -64));
        assert!(!can_saturate(64, 64), "255·128 = 32640 fits int16");
        assert!(
            !can_saturate(127, -127),
            "opposite signs are bounded by one product"
        );
        assert!(!can_saturate(127, 0));
        assert!(!can_saturate(-64, -64));
    }

    #[test]
    fn pair_sums_known_by_hand() {
        // 255·127 + 255·127 = 64770: the worked example of oneDNN's documentation.
        assert_eq!(pair_sum([255, 255], [127, 127]), 64770);
        assert!(saturates(64770));
        // 128·127 + 128·127 = 32512 fits; 129·127 + 129·127 = 32766 fits; 130·127 + 129·127 = 32893 does not.
        assert!(!saturates(pair_sum([128, 128], [127, 127])));
        assert!(!saturates(pair_sum([129, 129], [127, 127])));
        assert!(saturates(pair_sum([130, 129], [127, 127])));
        // The negative side saturates below −32768.
        assert!(!saturates(pair_sum([255, 1], [-127, -127])));
        assert!(saturates(pair_sum([255, 255], [-127, -2])));
    }

    #[test]
    fn pairs_follow_the_reduction_axis_and_odd_tails_are_safe() {
        // Pairs are (0,1), (2,3), (4,5); the 7th weight pairs with packing zeros.
        let w = [127, 127, 127, -127, 64, 64, 127];
        let pairs = risky_pairs(&w);
        assert_eq!(
            pairs,
            vec![RiskyPair {
                k: 0,
                w: [127, 127]
            }]
        );
        let risk = StaticRisk::of([&w[..]]);
        assert_eq!(risk.pairs, 4);
        assert_eq!(risk.risky_pairs, 1);
        assert_eq!(risk.worst_pair_sum, 64770);
    }

    #[test]
    fn counting_a_line_agrees_with_counting_each_output() {
        let codes: Vec<u8> = (0..64).map(|i| (i * 37 % 256) as u8).collect();
        for w in [[127, 100], [-120, -90], [70, 70]] {
            let pair = RiskyPair { k: 0, w };
            for stride in [1, 2, 3] {
                let outputs = (codes.len() - 5) / stride;
                let mut hit = vec![false; outputs];
                let counted = count_line(&pair, &codes, &codes[5..], stride, &mut hit);
                let each: Vec<bool> = (0..outputs)
                    .map(|i| {
                        let a = [codes[i * stride] as i32, codes[i * stride + 5] as i32];
                        saturates(pair_sum(a, w))
                    })
                    .collect();
                assert_eq!(hit, each, "weights {w:?}, stride {stride}");
                assert_eq!(counted, each.iter().filter(|&&s| s).count() as u64);
            }
        }
    }

    #[test]
    fn counting_one_output() {
        let w = [100, 100, -100, -100];
        let pairs = risky_pairs(&w);
        assert_eq!(pairs.len(), 2);
        // Codes 200, 200 → 40000 saturates; 100, 100 → −20000 does not.
        let a = [200, 200, 100, 100];
        assert_eq!(count_output(&pairs, |k| a[k]), (true, 1));
        let a = [100, 100, 200, 200];
        assert_eq!(count_output(&pairs, |k| a[k]), (true, 1));
        let a = [160, 160, 160, 160];
        assert_eq!(count_output(&pairs, |k| a[k]), (false, 0));
        let a = [160, 160, 170, 170];
        assert_eq!(
            count_output(&pairs, |k| a[k]),
            (true, 1),
            "−34000 saturates"
        );
        let a = [255, 255, 255, 255];
        assert_eq!(count_output(&pairs, |k| a[k]), (true, 2));
    }
}
