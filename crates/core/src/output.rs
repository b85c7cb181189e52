//! A run's output directory: `model.onnx` (with `model.onnx.data` when saved with external data, or
//! `model.xml` + `model.bin`), `report.json`, `report.html`, `intermediate/` and the resume journal in `state/`,
//! for every front end (the command line and the Python package write the same layout).
//!
//! Nothing is created until every input has been read and checked, so a run refused for bad input leaves no
//! trace; the directory is then checked for writability before the long work starts, not after. Every file goes
//! through [`aquant_onnx::write_atomic_with`], so `model.onnx` and `report.json` are never seen half-written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::graph::Sources;
use crate::quantize::Deploy;

/// The quantized model.
const MODEL: &str = "model.onnx";
/// Its external data (ONNX's layout: the model's file name + `.data`).
const MODEL_DATA: &str = "model.onnx.data";
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

/// Whether the saved ONNX model keeps its weights in an external data file (`model.onnx.data`) or inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ExternalData {
    /// External when the input model had external data, or when the model would not fit in one protobuf
    /// (2 GiB).
    #[default]
    Auto,
    /// Always external.
    Always,
    /// Always inline; a model past 2 GiB then cannot be saved (an error).
    Never,
}

impl ExternalData {
    /// The name as the flag and the Python keyword spell it.
    pub fn parse(name: &str) -> Result<ExternalData> {
        match name {
            "auto" => Ok(ExternalData::Auto),
            "always" => Ok(ExternalData::Always),
            "never" => Ok(ExternalData::Never),
            other => Err(Error::Config(format!(
                "external data must be 'auto', 'always' or 'never', not {other:?}"
            ))),
        }
    }

    /// The choice for a model read from `sources`: `Auto` keeps external data that the input had.
    pub fn for_input(self, sources: Option<&Sources>) -> ExternalData {
        match self {
            ExternalData::Auto if sources.is_some_and(|s| s.external_data) => ExternalData::Always,
            chosen => chosen,
        }
    }

    /// Refuses, before any work, a choice the output format cannot honour: an IR keeps its weights in its
    /// `.bin` whatever this says, so only `Auto` goes with it.
    pub fn check(self, format: OutputFormat) -> Result<()> {
        match (self, format) {
            (ExternalData::Always | ExternalData::Never, OutputFormat::Ir) => Err(Error::Config(
                "external data applies to an ONNX output only (an IR keeps its weights in model.bin)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Where one run's outputs go.
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// Plans outputs in `dir`, refusing a directory whose outputs would overwrite one of the files the input
    /// model was read from (`inputs`: the model, its external data or IR weights). Creates nothing.
    pub fn plan(inputs: &[PathBuf], dir: &Path) -> Result<Self> {
        let output = OutputDir {
            dir: dir.to_path_buf(),
        };
        // A directory that does not exist yet cannot hold the (existing) input files.
        let Ok(canonical_dir) = dir.canonicalize() else {
            return Ok(output);
        };
        for input in inputs.iter().filter_map(|m| m.canonicalize().ok()) {
            let overwritten = [MODEL, MODEL_DATA, MODEL_XML, MODEL_BIN, REPORT, REPORT_HTML]
                .iter()
                .any(|name| input == canonical_dir.join(name))
                || input.starts_with(canonical_dir.join(INTERMEDIATE));
            if overwritten {
                return Err(Error::Config(format!(
                    "the output directory '{}' would overwrite the input model's file '{}'; choose another output directory",
                    output.dir.display(),
                    input.display()
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

    /// Where the model of target `max_drop` of a run given several is saved: `max_drop_<value>/` (the tightest's
    /// model is the run's own, saved here).
    pub fn target(&self, max_drop: f64) -> OutputDir {
        OutputDir {
            dir: self.dir.join(format!("max_drop_{max_drop}")),
        }
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

    /// Saves the quantized model in `format`, an ONNX one with or without external data as `external` says;
    /// returns the path of the model (the `.xml` of an IR).
    pub fn save_model(
        &self,
        model: &aquant_onnx::ModelProto,
        format: OutputFormat,
        external: ExternalData,
    ) -> Result<PathBuf> {
        if format == OutputFormat::Onnx {
            let path = self.dir.join(MODEL);
            save_onnx(model, &path, external)?;
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

/// Saves `model` at `path`, with external data as `external` says; an inline save removes the external data
/// file an earlier run may have left beside it, which no longer belongs to the model.
pub fn save_onnx(
    model: &aquant_onnx::ModelProto,
    path: &Path,
    external: ExternalData,
) -> Result<()> {
    let size = aquant_onnx::encoded_len(model);
    let too_big = size > aquant_onnx::PROTOBUF_LIMIT;
    if external == ExternalData::Always || (external == ExternalData::Auto && too_big) {
        return Ok(aquant_onnx::save_model_external(model, path)?);
    }
    if too_big {
        return Err(Error::Config(format!(
            "the quantized model is {size} bytes, past protobuf's 2 GiB limit: it cannot be saved inline \
             (external data 'never'); use 'auto' or 'always'"
        )));
    }
    aquant_onnx::save_model(model, path)?;
    let stale = aquant_onnx::external_data_path(path);
    match std::fs::remove_file(&stale) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", &stale, e)),
        _ => Ok(()),
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
