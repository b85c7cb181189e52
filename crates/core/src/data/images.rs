//! A folder of images with the standard ImageNet evaluation transform (torchvision's `Resize(256)`,
//! `CenterCrop(224)`, `ToTensor`, `Normalize`), decoded on demand.
//!
//! Resizing reproduces Pillow's bilinear resize exactly (see [`resample`](super::resample)); JPEG decoders
//! may still differ from libjpeg by a unit here and there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array4, ArrayD};
use regex::Regex;

use crate::data::resample::resize_bilinear;
use crate::data::spec::DataSpec;
use crate::data::{Annotation, Dataset, Sample, SOLE_INPUT};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Images and their labels.
#[derive(Debug)]
pub struct ImageFolderDataset {
    files: Vec<(PathBuf, Annotation)>,
    input: String,
    resize: Option<u32>,
    center_crop: Option<u32>,
    scale: f32,
    mean: [f32; 3],
    std: [f32; 3],
    channels_first: bool,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn three(what: &str, v: &Option<Vec<f32>>, default: f32) -> Result<[f32; 3]> {
    match v {
        None => Ok([default; 3]),
        Some(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
        Some(v) if v.len() == 1 => Ok([v[0]; 3]),
        Some(v) => Err(Error::data(format!(
            "{what} needs 3 values (RGB), got {}",
            v.len()
        ))),
    }
}

impl ImageFolderDataset {
    /// Lists the folder and resolves labels; images are decoded later, in `get`.
    pub fn open(spec: &DataSpec, base_dir: &Path) -> Result<ImageFolderDataset> {
        let DataSpec::Images {
            root,
            labels,
            label_regex,
            input,
            resize,
            center_crop,
            scale,
            mean,
            std,
            layout,
        } = spec
        else {
            return Err(Error::Config("not an image-folder data spec".into()));
        };
        let root = base_dir.join(root);
        let files = match (labels, label_regex) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "give 'labels' or 'label_regex', not both".into(),
                ))
            }
            (Some(list), None) => from_label_file(&root, &base_dir.join(list))?,
            (None, regex) => {
                let regex = regex
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|e| Error::Config(format!("label_regex: {e}")))?;
                from_folder(&root, regex.as_ref())?
            }
        };
        let channels_first = match layout.as_deref().unwrap_or("NCHW") {
            "NCHW" => true,
            "NHWC" => false,
            other => return Err(Error::Config(format!("layout '{other}' (NCHW or NHWC)"))),
        };
        Ok(ImageFolderDataset {
            files,
            input: input.clone().unwrap_or_else(|| SOLE_INPUT.to_string()),
            resize: *resize,
            center_crop: *center_crop,
            scale: scale.unwrap_or(1.0 / 255.0),
            mean: three("mean", mean, 0.0)?,
            std: three("std", std, 1.0)?,
            channels_first,
        })
    }

    fn load(&self, path: &Path) -> Result<ArrayD<f32>> {
        let image = image::open(path)
            .map_err(|e| Error::data(format!("image '{}': {e}", path.display())))?
            .to_rgb8();
        let image = match self.resize {
            Some(size) => {
                let (w, h) = image.dimensions();
                let short = w.min(h).max(1);
                let (nw, nh) = if w <= h {
                    (size, (h as u64 * size as u64 / short as u64) as u32)
                } else {
                    ((w as u64 * size as u64 / short as u64) as u32, size)
                };
                resize_bilinear(&image, nw, nh)
            }
            None => image,
        };
        let image = match self.center_crop {
            Some(crop) => {
                let (w, h) = image.dimensions();
                if crop > w || crop > h {
                    return Err(Error::data(format!(
                        "image '{}' ({w}×{h} after resizing) is smaller than the crop {crop}",
                        path.display()
                    )));
                }
                let left = ((w - crop) as f64 / 2.0).round() as u32;
                let top = ((h - crop) as f64 / 2.0).round() as u32;
                image::imageops::crop_imm(&image, left, top, crop, crop).to_image()
            }
            None => image,
        };
        let (w, h) = (image.width() as usize, image.height() as usize);
        let mut out = if self.channels_first {
            Array4::<f32>::zeros((1, 3, h, w))
        } else {
            Array4::<f32>::zeros((1, h, w, 3))
        };
        for (x, y, pixel) in image.enumerate_pixels() {
            for c in 0..3 {
                let v = (pixel[c] as f32 * self.scale - self.mean[c]) / self.std[c];
                let (x, y) = (x as usize, y as usize);
                if self.channels_first {
                    out[[0, c, y, x]] = v;
                } else {
                    out[[0, y, x, c]] = v;
                }
            }
        }
        Ok(out.into_dyn())
    }
}

fn from_folder(root: &Path, regex: Option<&Regex>) -> Result<Vec<(PathBuf, Annotation)>> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io("listing", root, e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_image(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let annotation = match regex {
                None => Annotation::None,
                Some(regex) => {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let label = regex
                        .captures(name)
                        .and_then(|c| c.get(1))
                        .and_then(|m| m.as_str().parse::<i64>().ok())
                        .ok_or_else(|| {
                            Error::data(format!("label_regex finds no integer label in '{name}'"))
                        })?;
                    Annotation::Label(label)
                }
            };
            Ok((path, annotation))
        })
        .collect()
}

fn from_label_file(root: &Path, list: &Path) -> Result<Vec<(PathBuf, Annotation)>> {
    let text = std::fs::read_to_string(list).map_err(|e| Error::io("reading", list, e))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| (n, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            let mut parts = line.split_whitespace();
            let (Some(file), Some(label), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(Error::data(format!(
                    "{} line {}: expected '<file name> <label>'",
                    list.display(),
                    n + 1
                )));
            };
            let label: i64 = label.parse().map_err(|_| {
                Error::data(format!(
                    "{} line {}: label '{label}' is not an integer",
                    list.display(),
                    n + 1
                ))
            })?;
            let path = root.join(file);
            if !path.is_file() {
                return Err(Error::data(format!(
                    "{}: listed image '{}' does not exist",
                    list.display(),
                    path.display()
                )));
            }
            Ok((path, Annotation::Label(label)))
        })
        .collect()
}

impl Dataset for ImageFolderDataset {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (path, annotation) = self.files.get(index).ok_or_else(|| {
            Error::data(format!(
                "sample {index} is out of range ({} images)",
                self.files.len()
            ))
        })?;
        let tensor = self.load(path)?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Sample {
            inputs: vec![(self.input.clone(), Tensor::F32(tensor))],
            annotation: annotation.clone(),
            metadata: BTreeMap::from([("file".to_string(), file)]),
        })
    }

    fn label(&self, index: usize) -> Option<i64> {
        match self.files.get(index)? {
            (_, Annotation::Label(label)) => Some(*label),
            _ => None,
        }
    }
}
