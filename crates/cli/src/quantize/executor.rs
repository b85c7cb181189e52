//! `--executor`: where accuracy control's evaluations run. The search always runs here; a cluster executor is
//! opened by the front end ([`Executors`]), since the one there is, Ray, is driven from Python.

use anyhow::{bail, Result};

/// `--executor ray[:ADDRESS]`: a Ray cluster, at `address` (Ray's own forms: `auto`, `HOST:PORT`,
/// `ray://HOST:PORT`), else the one the process is in or a local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSpec {
    /// The cluster's address, if given.
    pub address: Option<String>,
}

impl ExecutorSpec {
    /// Reads `ray` or `ray:ADDRESS`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "ray" => Ok(ExecutorSpec { address: None }),
            Some(("ray", address)) if !address.is_empty() => Ok(ExecutorSpec {
                address: Some(address.to_owned()),
            }),
            _ => Err(format!("expected ray or ray:ADDRESS, not {text:?}")),
        }
    }
}

/// Opens the executor `--executor` names.
pub trait Executors {
    /// The executor `spec` names, ready for a run.
    fn open(&self, spec: &ExecutorSpec) -> Result<Box<dyn aquant::Executor>>;
}

/// The binary's: no executor but the local one (Ray needs the Python package's `aquant` command).
pub struct NoExecutors;

impl Executors for NoExecutors {
    fn open(&self, _: &ExecutorSpec) -> Result<Box<dyn aquant::Executor>> {
        bail!(
            "--executor ray runs through the Python package's aquant command (pip install 'aquant[ray]'): \
             this binary has no Python to drive Ray from"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_specs_are_ray_with_an_optional_address() {
        assert_eq!(ExecutorSpec::parse("ray").unwrap().address, None);
        let spec = ExecutorSpec::parse("ray:10.0.0.1:6379").unwrap();
        assert_eq!(spec.address.as_deref(), Some("10.0.0.1:6379"));
        for bad in ["dask", "ray:", "local:x"] {
            assert!(ExecutorSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
