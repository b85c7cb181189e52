//! `--backend`: which inference engine evaluates models (named apart from `aquant::pipeline::Engine`, POT's
//! engine: backend, data and metrics).

use anyhow::Result;
use aquant::Backend;
use clap::ValueEnum;

/// The engines aquant can evaluate with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    /// tract, embedded: nothing to install.
    #[default]
    Tract,
    /// ONNX Runtime, loaded from ORT_DYLIB_PATH or the Python onnxruntime package: faster.
    Ort,
    /// OpenVINO on its CPU device, loaded from OPENVINO_LIB_PATH or the Python openvino package: what POT
    /// and NNCF evaluate with.
    Openvino,
}

impl BackendName {
    /// Opens the engine (loading ONNX Runtime's library for `Ort`).
    pub fn open(self) -> Result<Box<dyn Backend>> {
        self.open_on(None)
    }

    /// Opens the engine on `device` (POT's `engine.device`; default CPU). Only OpenVINO has other devices:
    /// the other engines refuse any but the CPU rather than ignore it.
    pub fn open_on(self, device: Option<&str>) -> Result<Box<dyn Backend>> {
        let device = device.unwrap_or(aquant_openvino::DEFAULT_DEVICE);
        if self != BackendName::Openvino && device != aquant_openvino::DEFAULT_DEVICE {
            anyhow::bail!("engine.device '{device}': only --backend openvino runs on devices other than the CPU");
        }
        Ok(match self {
            BackendName::Tract => Box::new(aquant_tract::TractBackend::new()),
            BackendName::Ort => Box::new(aquant_ort::OrtBackend::new()?),
            BackendName::Openvino => Box::new(aquant_openvino::OpenvinoBackend::new(device)?),
        })
    }
}
