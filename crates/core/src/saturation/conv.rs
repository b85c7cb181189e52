//! A convolution's geometry and where its products read their activations: what the saturation count of a
//! convolution walks.

use aquant_onnx::{attr, NodeProto};

/// Convolution geometry (2-D; a 1-D convolution is a 2-D one of height 1).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ConvGeometry {
    pub group: usize,
    pub kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    /// Explicit pads (begin h, begin w, end h, end w) or an `auto_pad` mode.
    pads: [usize; 4],
    auto_pad: String,
}

impl ConvGeometry {
    /// The geometry of convolution `node` with a `kernel` window (a 1-D convolution's attributes apply to
    /// the width).
    pub fn of(node: &NodeProto, kernel: [usize; 2]) -> Self {
        let sizes = |name: &str| -> Vec<usize> {
            attr::ints(node, name)
                .unwrap_or_default()
                .into_iter()
                .map(|x| x.max(0) as usize)
                .collect()
        };
        let two = |name: &str| -> [usize; 2] {
            match sizes(name).as_slice() {
                [a, b] => [*a, *b],
                [b] => [1, *b],
                _ => [1, 1],
            }
        };
        let pads = match sizes("pads").as_slice() {
            [t, l, b, r] => [*t, *l, *b, *r],
            [l, r] => [0, *l, 0, *r],
            _ => [0; 4],
        };
        ConvGeometry {
            group: attr::int(node, "group").unwrap_or(1).max(1) as usize,
            kernel,
            strides: two("strides"),
            dilations: two("dilations"),
            pads,
            auto_pad: attr::string(node, "auto_pad").unwrap_or_default(),
        }
    }
}

impl ConvGeometry {
    /// The output's spatial size for an input of spatial size `hw` padded by `pads`.
    fn output_size(&self, hw: [usize; 2], pads: &[usize; 4]) -> [usize; 2] {
        [0, 1].map(|axis| {
            let span = self.dilations[axis] * (self.kernel[axis] - 1) + 1;
            (hw[axis] + pads[axis] + pads[axis + 2]).saturating_sub(span) / self.strides[axis] + 1
        })
    }
}

/// Where a convolution's products read their activations, for one input shape. The reduction index is
/// k = (ky·KW + kx)·Cg + ic: the (kh, kw, cin) order of MLAS' NHWC im2col and of its symmetric-conv weight
/// packing. Activations are read from a *padded* copy of each sample (the padding code around every channel),
/// so every window lies inside it and a product's activation sits at one offset from every window's corner:
/// the count walks output positions in a straight line, which the compiler vectorises.
pub(super) struct Windows<'g> {
    g: &'g ConvGeometry,
    /// Input channels per group.
    pub cg: usize,
    /// Input height and width.
    hw: [usize; 2],
    pads: [usize; 4],
    /// Output height and width.
    pub out: [usize; 2],
}

impl<'g> Windows<'g> {
    pub fn new(g: &'g ConvGeometry, channels: usize, hw: [usize; 2]) -> Self {
        let pads = pads(g, hw);
        Windows {
            g,
            cg: channels / g.group.max(1),
            hw,
            pads,
            out: g.output_size(hw, &pads),
        }
    }

    /// Products per output value.
    pub fn kernel_len(&self) -> usize {
        self.cg * self.g.kernel[0] * self.g.kernel[1]
    }

    /// Height and width of the padded input.
    fn padded_hw(&self) -> [usize; 2] {
        [0, 1].map(|axis| self.hw[axis] + self.pads[axis] + self.pads[axis + 2])
    }

    /// How far apart the corners of neighbouring windows in an output row are.
    pub fn column_stride(&self) -> usize {
        self.g.strides[1]
    }

    /// A sample's codes (`channels` × height × width) with `pad` around every channel, as
    /// [`Windows::offset`] and [`Windows::corner`] address them.
    pub fn padded(&self, sample: &[u8], channels: usize, pad: u8) -> Vec<u8> {
        let [h, w] = self.hw;
        let [hp, wp] = self.padded_hw();
        let mut padded = vec![pad; channels * hp * wp];
        for c in 0..channels {
            for y in 0..h {
                let from = (c * h + y) * w;
                let to = (c * hp + y + self.pads[0]) * wp + self.pads[1];
                padded[to..to + w].copy_from_slice(&sample[from..from + w]);
            }
        }
        padded
    }

    /// Where product `k` of an output channel reading input channels from `base_c` finds its activation in the
    /// padded sample, relative to the window's corner.
    pub fn offset(&self, base_c: usize, k: usize) -> usize {
        let ic = k % self.cg;
        let kx = (k / self.cg) % self.g.kernel[1];
        let ky = k / self.cg / self.g.kernel[1];
        let [hp, wp] = self.padded_hw();
        ((base_c + ic) * hp + ky * self.g.dilations[0]) * wp + kx * self.g.dilations[1]
    }

    /// The corner in the padded sample of the first window of output row `oy`.
    pub fn corner(&self, oy: usize) -> usize {
        oy * self.g.strides[0] * self.padded_hw()[1]
    }
}

/// Explicit pads for an input of spatial size `hw` (ONNX `auto_pad`).
fn pads(g: &ConvGeometry, hw: [usize; 2]) -> [usize; 4] {
    match g.auto_pad.as_str() {
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut p = [0; 4];
            for axis in 0..2 {
                let out = hw[axis].div_ceil(g.strides[axis]);
                let span = g.dilations[axis] * (g.kernel[axis] - 1) + 1;
                let total = ((out - 1) * g.strides[axis] + span).saturating_sub(hw[axis]);
                let small = total / 2;
                let (begin, end) = if g.auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                p[axis] = begin;
                p[axis + 2] = end;
            }
            p
        }
        "VALID" => [0; 4],
        _ => g.pads,
    }
}
