//! The output directory of `aquant quantize`: what is written there, and the checks made before anything is.
//!
//! Nothing is created until every input has been read and checked, so a run refused for bad input leaves no
//! trace; the directory is then checked for writability before the long work starts, not after. Every file goes
//! through [`aquant_onnx::write_atomic_with`], so `model.onnx` and `report.json` are never seen half-written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The quantized model.
const MODEL: &str = "model.onnx";
/// The run's report.
pub const REPORT: &str = "report.json";
/// The run's report as a page, rendered from `report.json`.
const REPORT_HTML: &str = "report.html";
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
            let overwritten = model == dir.join(MODEL)
                || model == dir.join(REPORT)
                || model == dir.join(REPORT_HTML)
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

    /// Saves the quantized model.
    pub fn save_model(&self, model: &aquant_onnx::ModelProto) -> Result<PathBuf> {
        let path = self.dir.join(MODEL);
        aquant_onnx::save_model(model, &path)?;
        Ok(path)
    }

    /// Writes `report.json`, streamed straight into its temporary file, then `report.html` rendered from it.
    pub fn write_report(&self, report: &impl serde::Serialize) -> Result<()> {
        let path = self.dir.join(REPORT);
        aquant_onnx::write_atomic_with(&path, |out| {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        })
        .with_context(|| format!("writing '{}'", path.display()))?;
        write_html(&self.dir).map(drop)
    }
}

/// Renders `dir/report.html` from `dir/report.json` (read back from the file, as `aquant report` does) and
/// returns its path.
pub fn write_html(dir: &Path) -> Result<PathBuf> {
    let view = aquant::render::ReportView::read(&dir.join(REPORT))?;
    let page = aquant::render::html(&view)?;
    let path = dir.join(REPORT_HTML);
    aquant_onnx::write_atomic(&path, page.as_bytes())
        .with_context(|| format!("writing '{}'", path.display()))?;
    Ok(path)
}
