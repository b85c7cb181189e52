//! Opening an inference engine by name, and the engine a saved model is deployed on.
//!
//! The command line and the Python package are both front ends of the same jobs; this crate is the one place
//! either turns a name into a [`Backend`], so both accept the same names, refuse the same combinations (a device
//! on an engine that has none) and judge a saved model on the same engine. It sits above the engine crates and
//! below the front ends, and holds no policy of its own beyond that choice.
//!
//! `auto` ([`EngineName::choose`]) searches on the engine the saved model is deployed on when it is installed:
//! it is several times faster than the embedded tract on int8 models, it measures exactly what is deployed, and
//! then the deployed check is the search's own final evaluation. Without it, tract: nothing to install.

#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use aquant::output::OutputFormat;
use aquant::{Backend, ChosenBackend, Error, Result};

/// The engines aquant evaluates with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum EngineName {
    /// The engine the saved model is deployed on when it is found (ONNX Runtime for an ONNX output, OpenVINO
    /// for an IR output), else tract.
    #[default]
    Auto,
    /// tract, embedded: nothing to install.
    Tract,
    /// ONNX Runtime, loaded from ORT_DYLIB_PATH or the Python onnxruntime package: faster.
    Ort,
    /// OpenVINO on its CPU device, loaded from OPENVINO_LIB_PATH or the Python openvino package: what POT
    /// and NNCF evaluate with.
    Openvino,
}

impl EngineName {
    /// Every name, in the order they are listed.
    pub const ALL: [EngineName; 4] = [
        EngineName::Auto,
        EngineName::Tract,
        EngineName::Ort,
        EngineName::Openvino,
    ];

    /// The name a flag and a keyword argument take (`auto`, `tract`, `ort`, `openvino`).
    pub fn name(self) -> &'static str {
        match self {
            EngineName::Auto => "auto",
            EngineName::Tract => "tract",
            EngineName::Ort => "ort",
            EngineName::Openvino => "openvino",
        }
    }

    /// Opens the engine on the CPU (loading ONNX Runtime's or OpenVINO's library); `auto` as for an ONNX model.
    pub fn open(self) -> Result<Box<dyn Backend>> {
        self.open_on(None)
    }

    /// Opens the engine on `device` (POT's `engine.device`; default CPU); `auto` as for an ONNX model
    /// ([`EngineName::choose`]).
    pub fn open_on(self, device: Option<&str>) -> Result<Box<dyn Backend>> {
        Ok(self.choose(OutputFormat::Onnx, device)?.engine)
    }

    /// Opens the engine a run saving `format` on `device` calibrates and searches with, and says why it is that
    /// one. A named engine is opened as named (its absence is an error). `auto` opens the engine `format` is
    /// deployed on when it is found, else tract; on a device other than the CPU it is OpenVINO, the only engine
    /// with devices. Only OpenVINO has other devices: a named engine refuses any but the CPU rather than ignore
    /// it. For an IR output OpenVINO reads the search's candidates as the IR they are saved as, as
    /// [`deployed_engine`] does (`openvino-ir`): its conversion of the same QDQ ONNX can compute otherwise.
    pub fn choose(self, format: OutputFormat, device: Option<&str>) -> Result<ChosenBackend> {
        let on_cpu = device.is_none_or(|d| d == aquant_openvino::DEFAULT_DEVICE);
        let device = device.unwrap_or(aquant_openvino::DEFAULT_DEVICE);
        if !matches!(self, EngineName::Openvino | EngineName::Auto) && !on_cpu {
            return Err(Error::Config(format!(
                "device '{device}': only backend openvino runs on devices other than the CPU"
            )));
        }
        let named = |engine: Box<dyn Backend>| Ok(ChosenBackend::named(engine));
        match self {
            EngineName::Tract => named(Box::new(aquant_tract::TractBackend::new())),
            EngineName::Ort => named(Box::new(aquant_ort::OrtBackend::new()?)),
            EngineName::Openvino => named(openvino(format, device)?),
            EngineName::Auto if !on_cpu => {
                let engine = openvino(format, device)?;
                Ok(ChosenBackend {
                    engine,
                    because: format!("auto: device {device}, which only OpenVINO runs on"),
                })
            }
            EngineName::Auto => Ok(auto(format)),
        }
    }
}

/// `auto` on the CPU: the engine `format` is deployed on, else tract (with what opening it said).
fn auto(format: OutputFormat) -> ChosenBackend {
    let (engine, opened) = match format {
        OutputFormat::Onnx => (
            "ONNX Runtime, where an ONNX output runs,",
            aquant_ort::OrtBackend::new().map(|b| Box::new(b) as Box<dyn Backend>),
        ),
        OutputFormat::Ir => (
            "OpenVINO, where an IR output runs,",
            openvino(format, aquant_openvino::DEFAULT_DEVICE),
        ),
    };
    match opened {
        Ok(engine_found) => ChosenBackend {
            engine: engine_found,
            because: format!("auto: {engine} was found"),
        },
        Err(error) => ChosenBackend {
            engine: Box::new(aquant_tract::TractBackend::new()),
            because: format!("auto: {engine} was not found ({error}); tract is embedded"),
        },
    }
}

/// OpenVINO on `device`, reading models as `format` saves them: as the IR for an IR output.
fn openvino(format: OutputFormat, device: &str) -> Result<Box<dyn Backend>> {
    let engine = aquant_openvino::OpenvinoBackend::new(device)?;
    Ok(match format {
        OutputFormat::Onnx => Box::new(engine),
        OutputFormat::Ir => Box::new(engine.reading_ir()),
    })
}

impl fmt::Display for EngineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `auto`, `tract`, `ort` or `openvino`, as the Python package's `backend=` takes it.
impl FromStr for EngineName {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        EngineName::ALL
            .into_iter()
            .find(|e| e.name() == text)
            .ok_or_else(|| {
                Error::Config(format!(
                    "backend must be 'auto', 'tract', 'ort' or 'openvino', not {text:?}"
                ))
            })
    }
}

/// The saved model cannot be judged where it is deployed: which engine, and what opening it said. Front ends
/// warn and go on (the run is still worth having), each naming its own way to silence the warning.
#[derive(Debug)]
pub struct DeployedEngineMissing {
    /// The engine's display name (`ONNX Runtime`, `OpenVINO`).
    pub engine: &'static str,
    /// Why it did not open.
    pub error: Error,
}

impl fmt::Display for DeployedEngineMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the saved model is not checked on {} ({})",
            self.engine, self.error
        )
    }
}

/// The engine a model saved as `format` is judged on: ONNX Runtime as deployed for an ONNX output, OpenVINO
/// reading the saved IR itself (on `device`, default CPU) for an IR output.
pub fn deployed_engine(
    format: OutputFormat,
    device: Option<&str>,
) -> std::result::Result<Box<dyn Backend>, DeployedEngineMissing> {
    let (engine, opened) = match format {
        OutputFormat::Onnx => ("ONNX Runtime", EngineName::Ort.open()),
        OutputFormat::Ir => (
            "OpenVINO",
            openvino(format, device.unwrap_or(aquant_openvino::DEFAULT_DEVICE)),
        ),
    };
    opened.map_err(|error| DeployedEngineMissing { engine, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_name_is_refused() {
        for engine in EngineName::ALL {
            assert_eq!(engine.name().parse::<EngineName>().unwrap(), engine);
        }
        let error = "onnxruntime".parse::<EngineName>().unwrap_err().to_string();
        assert!(
            error.contains("'auto', 'tract', 'ort' or 'openvino'"),
            "{error}"
        );
    }

    #[test]
    fn a_device_on_an_engine_without_devices_is_refused_not_ignored() {
        for engine in [EngineName::Tract, EngineName::Ort] {
            let error = engine.open_on(Some("GPU")).err().unwrap().to_string();
            assert!(error.contains("only backend openvino"), "{error}");
        }
        assert!(EngineName::Tract.open_on(Some("CPU")).is_ok());
    }
}
