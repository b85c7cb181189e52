//! The output directory of `aquant quantize`: what is written there, and the checks made before anything is.
//!
//! Nothing is created until every input has been read and checked, so a run refused for bad input leaves no
//! trace; the directory is then checked for writability before the long work starts, not after. Every file goes
//! through [`aquant_onnx::write_atomic_with`], so `model.onnx` and `report.json` are never seen half-written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The quantized model.
const MODEL: &str = "model.onnx";
/// The quantized model as an OpenVINO IR: graph and weights.
const MODEL_XML: &str = "model.xml";
const MODEL_BIN: &str = "model.bin";

/// The format the quantized model is saved in (`--output-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// QDQ ONNX (model.onnx).
    Onnx,
    /// OpenVINO IR in NNCF's form (model.xml + model.bin): FakeQuantize on activations, int8 weights.
    Ir,
}

impl OutputFormat {
    /// `chosen`, else the input model's format.
    pub fn resolve(chosen: Option<OutputFormat>, model: &Path) -> OutputFormat {
        chosen.unwrap_or(if aquant_ir::is_ir(model) {
            OutputFormat::Ir
        } else {
            OutputFormat::Onnx
        })
    }
}
/// The run's report.
const REPORT: &str = "report.json";
/// Intermediate models (one per accuracy-control step) go in this subdirectory.
const INTERMEDIATE: &str = "intermediate";

/// Where one run's outputs go.
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// Plans outputs in `dir`, refusing a directory whose outputs would overwrite the input model `model`.
    /// Creates nothing.
    pub fn plan(model: &Path, dir: &Path) -> Result<Self> {
        let output = OutputDir {
            dir: dir.to_path_buf(),
        };
        // A directory that does not exist yet cannot hold the (existing) input model.
        if let (Ok(model), Ok(dir)) = (model.canonicalize(), dir.canonicalize()) {
            let overwritten = [MODEL, MODEL_XML, MODEL_BIN, REPORT]
                .iter()
                .any(|name| model == dir.join(name))
                || model.starts_with(dir.join(INTERMEDIATE));
            if overwritten {
                bail!(
                    "the output directory '{}' would overwrite the input model '{}'; choose another output directory",
                    output.dir.display(),
                    model.display()
                );
            }
        }
        Ok(output)
    }

    /// Creates the directory and checks that files can be written in it.
    pub fn create(&self) -> Result<()> {
        let context = || format!("output directory '{}'", self.dir.display());
        std::fs::create_dir_all(&self.dir).with_context(context)?;
        let probe = self.dir.join(".aquant-write-check");
        aquant_onnx::write_atomic(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(context)
    }

    /// Where accuracy control saves the model after every step.
    pub fn intermediate(&self) -> PathBuf {
        self.dir.join(INTERMEDIATE)
    }

    /// Saves the quantized model in `format`; returns the path of the model (the `.xml` of an IR).
    pub fn save_model(
        &self,
        model: &aquant_onnx::ModelProto,
        format: OutputFormat,
    ) -> Result<PathBuf> {
        if format == OutputFormat::Onnx {
            let path = self.dir.join(MODEL);
            aquant_onnx::save_model(model, &path)?;
            return Ok(path);
        }
        let ir = aquant_ir::write_ir(model)?;
        let (xml, bin) = (self.dir.join(MODEL_XML), self.dir.join(MODEL_BIN));
        aquant_onnx::write_atomic(&bin, &ir.bin)
            .and_then(|()| aquant_onnx::write_atomic(&xml, ir.xml.as_bytes()))
            .with_context(|| format!("writing '{}'", xml.display()))?;
        Ok(xml)
    }

    /// Writes `report.json`, streamed straight into its temporary file.
    pub fn write_report(&self, report: &impl serde::Serialize) -> Result<()> {
        let path = self.dir.join(REPORT);
        aquant_onnx::write_atomic_with(&path, |out| {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        })
        .with_context(|| format!("writing '{}'", path.display()))
    }
}
