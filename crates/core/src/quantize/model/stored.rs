//! The integer weights of a quantized model's ops, computed once and shared by every model built from it.
//!
//! Accuracy control builds the model again for every candidate, and every candidate stores the same integers for
//! the ops it keeps quantized. Quantizing a weight (FP32 to integers, then to its storage bytes) was most of a
//! build, and each built model held its own copy of the bytes: on a 1.68 GB MLP a candidate took 7.6 s to build
//! and a cohort of two held two int8 models (issue #27). Here an op's bytes are computed the first time a model
//! asks for them and handed out as one shared buffer afterwards (a reference count): a build copies no weight,
//! and the candidates in memory at once share their integer weights.
//!
//! An entry is keyed by the op and the quantizer it was computed with, so a model whose quantizer of an op
//! differs (a 16-bit step of the precision ladder) gets its own. The FP32 weights never change after
//! [`QuantizedModel::new`](super::QuantizedModel::new): the models that share a store (clones) share them too.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aquant_onnx::Bytes;

use crate::error::Result;
use crate::numerics::Quantizer;

/// One op's stored weights: the bytes under each quantizer a model asked for.
type Entries = Vec<(Quantizer, Bytes)>;

/// Each op's stored weights, by the quantizer they were computed with; shared by clones.
#[derive(Clone, Default)]
pub(super) struct StoredWeights(Arc<Mutex<HashMap<String, Entries>>>);

impl StoredWeights {
    /// The stored bytes of `op`'s weight under `quantizer`: computed by `compute` the first time, shared after.
    /// Two threads asking at once may both compute them (the same bytes); the lock is not held meanwhile.
    pub fn get_or_compute(
        &self,
        op: &str,
        quantizer: &Quantizer,
        compute: impl FnOnce() -> Result<Bytes>,
    ) -> Result<Bytes> {
        if let Some(bytes) = self.get(op, quantizer) {
            return Ok(bytes);
        }
        let bytes = compute()?;
        let mut stored = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = stored.entry(op.to_owned()).or_default();
        if !entries.iter().any(|(q, _)| q == quantizer) {
            entries.push((quantizer.clone(), bytes.clone()));
        }
        Ok(bytes)
    }

    fn get(&self, op: &str, quantizer: &Quantizer) -> Option<Bytes> {
        let stored = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = stored.get(op)?;
        entries
            .iter()
            .find(|(q, _)| q == quantizer)
            .map(|(_, bytes)| bytes.clone())
    }
}

impl fmt::Debug for StoredWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stored = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes: usize = stored.values().flatten().map(|(_, b)| b.len()).sum();
        write!(f, "StoredWeights({} ops, {bytes} bytes)", stored.len())
    }
}
