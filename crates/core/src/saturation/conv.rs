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
/// packing.
pub(super) struct Windows<'g> {
    g: &'g ConvGeometry,
    /// Input channels per group.
    pub cg: usize,
    /// Input height and width.
    hw: [usize; 2],
    pads: [usize; 4],
    /// Output height and width.
    pub out: [usize; 2],
    /// Rows and columns a window covers, dilations included.
    span: [usize; 2],
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
            span: [0, 1].map(|axis| g.dilations[axis] * (g.kernel[axis] - 1) + 1),
        }
    }

    /// Products per output value.
    pub fn kernel_len(&self) -> usize {
        self.cg * self.g.kernel[0] * self.g.kernel[1]
    }

    /// Product `k`'s input channel within its group and its row and column relative to the window's corner.
    fn tap(&self, k: usize) -> (usize, usize, usize) {
        let ic = k % self.cg;
        let kx = (k / self.cg) % self.g.kernel[1];
        let ky = k / self.cg / self.g.kernel[1];
        (ic, ky * self.g.dilations[0], kx * self.g.dilations[1])
    }

    /// Where product `k` of an output channel reading input channels from `base_c` finds its activation in a
    /// sample's codes, relative to the window's corner.
    pub fn offset(&self, base_c: usize, k: usize) -> usize {
        let (ic, dy, dx) = self.tap(k);
        ((base_c + ic) * self.hw[0] + dy) * self.hw[1] + dx
    }

    /// Every output's window corner (row, column) in the input, in output order; negative in the padding.
    pub fn corners(&self) -> impl Iterator<Item = (isize, isize)> + '_ {
        let [oh, ow] = self.out;
        (0..oh).flat_map(move |oy| {
            (0..ow).map(move |ox| {
                let iy = (oy * self.g.strides[0]) as isize - self.pads[0] as isize;
                let ix = (ox * self.g.strides[1]) as isize - self.pads[1] as isize;
                (iy, ix)
            })
        })
    }

    /// The corner's position in a sample's codes when the whole window lies inside the input.
    pub fn inside(&self, iy: isize, ix: isize) -> Option<usize> {
        let [h, w] = self.hw;
        let inside = iy >= 0
            && ix >= 0
            && iy as usize + self.span[0] <= h
            && ix as usize + self.span[1] <= w;
        inside.then(|| iy as usize * w + ix as usize)
    }

    /// The code product `k` reads in a window cornered at `corner` (the padding code outside the input).
    pub fn code(
        &self,
        sample: &[i32],
        base_c: usize,
        k: usize,
        corner: [isize; 2],
        pad: i32,
    ) -> i32 {
        let (ic, dy, dx) = self.tap(k);
        let [h, w] = self.hw;
        let y = corner[0] + dy as isize;
        let x = corner[1] + dx as isize;
        if y < 0 || x < 0 || y as usize >= h || x as usize >= w {
            pad
        } else {
            sample[((base_c + ic) * h + y as usize) * w + x as usize]
        }
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
