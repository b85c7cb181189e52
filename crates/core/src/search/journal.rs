//! The journal of a run: every result that took real work, written to disk as it is obtained, so that an
//! interrupted run resumes where it stopped.
//!
//! The search is deterministic: given the same results it takes the same decisions. So the journal stores
//! results, not decisions — calibrated quantizer parameters, evaluations (keyed by the quantized model's
//! fingerprint, the reverted ops and the samples), and what each ranking took out (with the ranking as it
//! then stood, for the report). A resumed run replays the search, taking from the journal whatever is there;
//! it ends with the same model and report as an uninterrupted run (only timings and work counts differ).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::Evaluation;
use crate::progress::Progress;
use crate::quantize::Calibration;
use crate::quantize::{self, QuantizationParams, QuantizationSummary, QuantizedModel};
use crate::search::report::RankingEntry;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CalibrationRecord {
    params: String,
    calibration: Calibration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EvaluationRecord {
    model: u64,
    reverted: BTreeSet<String>,
    evaluation: Evaluation,
}

/// A ranking's state when it took an entry out: its remaining candidates' per-sample values (group,
/// values) and the groups of its current cohort — all that decides how it goes on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RankingState {
    /// (group, per-sample values) of each remaining candidate.
    pub values: Vec<(usize, Vec<f64>)>,
    /// Groups of the cohort being evaluated.
    pub cohort: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PickRecord {
    model: u64,
    base: BTreeSet<String>,
    metric: usize,
    subset: Vec<usize>,
    taken: Vec<(RankingEntry, RankingState)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Records {
    calibrations: Vec<CalibrationRecord>,
    evaluations: Vec<EvaluationRecord>,
    picks: Vec<PickRecord>,
}

/// `model` quantized with `params`: calibrated on `data`, or rebuilt from the journal's record of that
/// calibration (then the summary is empty: nothing was run).
pub(super) fn quantize(
    journal: &mut Journal,
    backend: &dyn Backend,
    model: ModelProto,
    data: &dyn Dataset,
    params: &QuantizationParams,
    batch_size: usize,
    progress: &dyn Progress,
) -> Result<(QuantizedModel, QuantizationSummary)> {
    let key = serde_json::to_string(params)
        .map_err(|e| Error::Config(format!("encoding parameters: {e}")))?;
    if let Some(calibration) = journal.calibration(&key) {
        let quantized = quantize::from_calibration(model, params, calibration)?;
        return Ok((quantized, QuantizationSummary::default()));
    }
    let (quantized, summary) =
        quantize::quantize(backend, model, data, params, batch_size, progress)?;
    journal.record_calibration(&key, &quantized.calibration())?;
    Ok((quantized, summary))
}

/// The journal, in memory and (when it has a file) on disk.
#[derive(Debug, Default)]
pub struct Journal {
    file: Option<PathBuf>,
    records: Records,
}

impl Journal {
    /// A journal kept in memory only.
    pub fn in_memory() -> Journal {
        Journal::default()
    }

    /// The journal stored at `file`: loaded when it exists, created on first record otherwise.
    pub fn open(file: &Path) -> Result<Journal> {
        let records = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Config(format!(
                    "the journal '{}' is unreadable: {e}",
                    file.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Records::default(),
            Err(e) => return Err(Error::io("reading", file, e)),
        };
        Ok(Journal {
            file: Some(file.to_owned()),
            records,
        })
    }

    fn save(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&self.records)
            .map_err(|e| Error::Config(format!("encoding the journal: {e}")))?;
        aquant_onnx::write_atomic(file, &bytes).map_err(|e| Error::io("writing", file, e))
    }

    /// The calibration recorded for quantization parameters `params` (their JSON form).
    pub fn calibration(&self, params: &str) -> Option<Calibration> {
        self.records
            .calibrations
            .iter()
            .find(|r| r.params == params)
            .map(|r| r.calibration.clone())
    }

    /// Records a calibration.
    pub fn record_calibration(&mut self, params: &str, calibration: &Calibration) -> Result<()> {
        self.records.calibrations.push(CalibrationRecord {
            params: params.to_owned(),
            calibration: calibration.clone(),
        });
        self.save()
    }

    /// The evaluation recorded for the model `model` with `reverted` ops in FP32 on `indices`.
    pub fn evaluation(
        &self,
        model: u64,
        reverted: &BTreeSet<String>,
        indices: &[usize],
    ) -> Option<Evaluation> {
        self.records
            .evaluations
            .iter()
            .find(|r| {
                r.model == model && &r.reverted == reverted && r.evaluation.indices == indices
            })
            .map(|r| r.evaluation.clone())
    }

    /// Records an evaluation.
    pub fn record_evaluation(
        &mut self,
        model: u64,
        reverted: &BTreeSet<String>,
        evaluation: &Evaluation,
    ) -> Result<()> {
        self.records.evaluations.push(EvaluationRecord {
            model,
            reverted: reverted.clone(),
            evaluation: evaluation.clone(),
        });
        self.save()
    }

    /// The `n`-th entry a ranking took out (and its remaining candidates' values then), if recorded.
    pub fn pick(
        &self,
        model: u64,
        base: &BTreeSet<String>,
        metric: usize,
        subset: &[usize],
        n: usize,
    ) -> Option<(RankingEntry, RankingState)> {
        self.records
            .picks
            .iter()
            .find(|r| {
                r.model == model && &r.base == base && r.metric == metric && r.subset == subset
            })
            .and_then(|r| r.taken.get(n).cloned())
    }

    /// Records the next entry a ranking took out.
    pub fn record_pick(
        &mut self,
        model: u64,
        base: &BTreeSet<String>,
        metric: usize,
        subset: &[usize],
        pick: (RankingEntry, RankingState),
    ) -> Result<()> {
        let existing = self.records.picks.iter_mut().find(|r| {
            r.model == model && &r.base == base && r.metric == metric && r.subset == subset
        });
        match existing {
            Some(record) => record.taken.push(pick),
            None => self.records.picks.push(PickRecord {
                model,
                base: base.clone(),
                metric,
                subset: subset.to_vec(),
                taken: vec![pick],
            }),
        }
        self.save()
    }
}
