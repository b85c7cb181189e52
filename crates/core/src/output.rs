//! A run's output directory: `model.onnx` (or `model.xml` + `model.bin`), `report.json`, `report.html`, `intermediate/` and the resume journal
//! in `state/`,
//! for every front end (the command line and the Python package write the same layout).
//!
//! Nothing is created until every input has been read and checked, so a run refused for bad input leaves no
//! trace; the directory is then checked for writability before the long work starts, not after. Every file goes
//! through [`aquant_onnx::write_atomic_with`], so `model.onnx` and `report.json` are never seen half-written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::quantize::Deploy;

/// The quantized model.
const MODEL: &str = "model.onnx";
/// The quantized model as an OpenVINO IR: graph and weights.
const MODEL_XML: &str = "model.xml";
const MODEL_BIN: &str = "model.bin";
/// The run's report.
pub const REPORT: &str = "report.json";
/// The run's report as a page, rendered from `report.json`.
pub const REPORT_HTML: &str = "report.html";
/// Intermediate models (one per accuracy-control step) go in this subdirectory.
const INTERMEDIATE: &str = "intermediate";
/// What an interrupted accuracy-aware run needs to be resumed.
const STATE: &str = "state";
/// The journal of results (see [`crate::search::RunOptions::journal`]), inside [`STATE`].
const JOURNAL: &str = "journal.jsonl";

/// The format the quantized model is saved in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

    /// The engine a model saved in this format runs on.
    pub fn engine(self) -> Deploy {
        match self {
            OutputFormat::Onnx => Deploy::Ort,
            OutputFormat::Ir => Deploy::Openvino,
        }
    }

    /// Refuses, before any work, a model that cannot be saved in this format (an op without an IR form).
    pub fn check(self, model: &aquant_onnx::ModelProto) -> Result<()> {
        match self {
            OutputFormat::Onnx => Ok(()),
            OutputFormat::Ir => aquant_ir::write_ir(model).map(drop).map_err(Error::from),
        }
    }
}

/// Where one run's outputs go.
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// Plans outputs in `dir`, refusing a directory whose outputs would overwrite the input model `model`
    /// (when the model came from a file). Creates nothing.
    pub fn plan(model: Option<&Path>, dir: &Path) -> Result<Self> {
        let output = OutputDir {
            dir: dir.to_path_buf(),
        };
        // A directory that does not exist yet cannot hold the (existing) input model.
        let canonical = model.map(|m| (m.canonicalize(), dir.canonicalize()));
        if let Some((Ok(model), Ok(dir))) = canonical {
            let overwritten = [MODEL, MODEL_XML, MODEL_BIN, REPORT, REPORT_HTML]
                .iter()
                .any(|name| model == dir.join(name))
                || model.starts_with(dir.join(INTERMEDIATE));
            if overwritten {
                return Err(Error::Config(format!(
                    "the output directory '{}' would overwrite the input model '{}'; choose another output directory",
                    output.dir.display(),
                    model.display()
                )));
            }
        }
        Ok(output)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory and checks that files can be written in it.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("creating the output directory", &self.dir, e))?;
        let probe = self.dir.join(".aquant-write-check");
        aquant_onnx::write_atomic(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| Error::io("writing in the output directory", &self.dir, e))
    }

    /// Where accuracy control saves the model after every step.
    pub fn intermediate(&self) -> PathBuf {
        self.dir.join(INTERMEDIATE)
    }

    /// The state directory of an accuracy-aware run: kept when `resume` (an interrupted run continues from its
    /// journal), emptied otherwise.
    pub fn state(&self, resume: bool) -> Result<PathBuf> {
        let state = self.dir.join(STATE);
        if !resume {
            match std::fs::remove_dir_all(&state) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("clearing", &state, e))
                }
                _ => {}
            }
        }
        std::fs::create_dir_all(&state).map_err(|e| Error::io("creating", &state, e))?;
        Ok(state)
    }

    /// The journal file inside a state directory made by [`OutputDir::state`].
    pub fn journal(state: &Path) -> PathBuf {
        state.join(JOURNAL)
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
        // The weights first: an .xml is never seen beside a .bin that is not its own.
        aquant_onnx::write_atomic(&bin, &ir.bin)
            .and_then(|()| aquant_onnx::write_atomic(&xml, ir.xml.as_bytes()))
            .map_err(|e| Error::io("writing", &xml, e))?;
        Ok(xml)
    }

    /// Writes `report.json`, streamed straight into its temporary file, then `report.html` rendered from it.
    pub fn write_report(&self, report: &impl serde::Serialize) -> Result<()> {
        let path = self.dir.join(REPORT);
        aquant_onnx::write_atomic_with(&path, |out| {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        })
        .map_err(|e| Error::io("writing", &path, e))?;
        write_html(&self.dir).map(drop)
    }
}

/// Renders `dir/report.html` from `dir/report.json` (read back from the file, as `aquant report` does) and
/// returns its path.
pub fn write_html(dir: &Path) -> Result<PathBuf> {
    let view = crate::render::ReportView::read(&dir.join(REPORT))?;
    let page = crate::render::html(&view)?;
    let path = dir.join(REPORT_HTML);
    aquant_onnx::write_atomic(&path, page.as_bytes())
        .map_err(|e| Error::io("writing", &path, e))?;
    Ok(path)
}
