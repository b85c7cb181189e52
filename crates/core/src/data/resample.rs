//! Pillow's bilinear resize, bit for bit.
//!
//! torchvision's `Resize` calls Pillow, so matching the reference preprocessing means matching Pillow's
//! `ImagingResample` (Resample.c): a separable triangle filter whose support widens with the downscale factor,
//! horizontal pass first, 22-bit fixed-point coefficients and an 8-bit intermediate image. The `image` crate's
//! resize differs in pass order and rounding, enough to flip a borderline prediction.

use image::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first input pixel and the fixed-point weights of the window starting there.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // bilinear support is 1.0
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let inverse = 1.0 / filter_scale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin);
        let mut w: Vec<f64> = (0..count)
            .map(|x| {
                let t = ((x + xmin) as f64 - center + 0.5) * inverse;
                (1.0 - t.abs()).max(0.0)
            })
            .collect();
        let total: f64 = w.iter().sum();
        if total != 0.0 {
            w.iter_mut().for_each(|v| *v /= total);
        }
        let fixed = w
            .iter()
            .map(|&v| {
                let scaled = v * (1u64 << PRECISION_BITS) as f64;
                (if v < 0.0 { scaled - 0.5 } else { scaled + 0.5 }).trunc() as i32
            })
            .collect();
        bounds.push((xmin, count));
        weights.push(fixed);
    }
    Coefficients { bounds, weights }
}

fn clip8(value: i64) -> u8 {
    (value >> PRECISION_BITS).clamp(0, 255) as u8
}

fn horizontal(src: &RgbImage, width: u32) -> RgbImage {
    let c = coefficients(src.width() as usize, width as usize);
    let mut out = RgbImage::new(width, src.height());
    for y in 0..src.height() {
        for (xx, ((xmin, count), w)) in c.bounds.iter().zip(&c.weights).enumerate() {
            let mut acc = [1i64 << (PRECISION_BITS - 1); 3];
            for (k, &weight) in w.iter().enumerate().take(*count) {
                let p = src.get_pixel((xmin + k) as u32, y);
                for (a, &v) in acc.iter_mut().zip(&p.0) {
                    *a += v as i64 * weight as i64;
                }
            }
            out.put_pixel(xx as u32, y, image::Rgb(acc.map(clip8)));
        }
    }
    out
}

fn vertical(src: &RgbImage, height: u32) -> RgbImage {
    let c = coefficients(src.height() as usize, height as usize);
    let mut out = RgbImage::new(src.width(), height);
    for (yy, ((ymin, count), w)) in c.bounds.iter().zip(&c.weights).enumerate() {
        for x in 0..src.width() {
            let mut acc = [1i64 << (PRECISION_BITS - 1); 3];
            for (k, &weight) in w.iter().enumerate().take(*count) {
                let p = src.get_pixel(x, (ymin + k) as u32);
                for (a, &v) in acc.iter_mut().zip(&p.0) {
                    *a += v as i64 * weight as i64;
                }
            }
            out.put_pixel(x, yy as u32, image::Rgb(acc.map(clip8)));
        }
    }
    out
}

/// Resizes like Pillow's `Image.resize((width, height), Image.BILINEAR)`.
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let horizontal_pass = if width != src.width() {
        horizontal(src, width)
    } else {
        src.clone()
    };
    if height != horizontal_pass.height() {
        vertical(&horizontal_pass, height)
    } else {
        horizontal_pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_a_constant_image_keeps_it_constant_and_weights_sum_to_one() {
        let src = RgbImage::from_pixel(8, 6, image::Rgb([10, 200, 255]));
        let out = resize_bilinear(&src, 4, 3);
        assert_eq!(out.dimensions(), (4, 3));
        assert!(out.pixels().all(|p| p.0 == [10, 200, 255]));
        let c = coefficients(8, 4);
        for w in &c.weights {
            let sum: i64 = w.iter().map(|&v| v as i64).sum();
            assert!((sum - (1 << PRECISION_BITS)).abs() <= w.len() as i64);
        }
    }

    #[test]
    fn downscale_by_two_averages_with_a_widened_triangle() {
        // Pillow: Image.fromarray(np.array([[0, 100, 200, 250]], np.uint8)).resize((2, 1), Image.BILINEAR)
        // gives [[71, 207]]: support 2, weights (3, 3, 1)/7 and (1, 3, 3)/7.
        let mut src = RgbImage::new(4, 1);
        for (x, v) in [0u8, 100, 200, 250].into_iter().enumerate() {
            src.put_pixel(x as u32, 0, image::Rgb([v, v, v]));
        }
        let out = resize_bilinear(&src, 2, 1);
        assert_eq!([out.get_pixel(0, 0)[0], out.get_pixel(1, 0)[0]], [71, 207]);
    }
}
