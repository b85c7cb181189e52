//! The journal of a run: every result that took real work, appended to a file as JSON lines as it is
//! obtained, so that an interrupted run resumes where it stopped.
//!
//! The search is deterministic: given the same results it takes the same decisions. So the journal stores
//! results, never decisions — calibrations, evaluations, and ranking candidates' per-sample values, each keyed
//! by what determines it (the judging engine and quantized model, the reverted ops, the samples). A resumed
//! run replays the search, taking from the journal whatever a previous run recorded; it ends with the same
//! model and report as an uninterrupted run (only timings and work counts differ). Replaying results cannot
//! replay a stale decision, such as a group that was rolled back.
//!
//! The first line names the format version and the run's input (a fingerprint of the model, the data, the
//! parameters and the engine): a journal of another version or another input is refused, not half-used.
//! Records are appended, one line each (a run's journal grows linearly); a last line cut short by a kill is
//! ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::Evaluation;
use crate::quantize::FittedQuantizers;

/// The format version this build writes and reads.
pub const JOURNAL_VERSION: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    aquant_journal: u32,
    input: String,
}

/// One line of the journal after the header.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Calibration {
        params: String,
        calibration: FittedQuantizers,
    },
    Evaluation {
        tag: String,
        reverted: BTreeSet<String>,
        evaluation: Evaluation,
    },
    Values {
        tag: String,
        metric: usize,
        reverted: BTreeSet<String>,
        indices: Vec<usize>,
        values: Vec<f64>,
    },
}

/// Key of a candidate's per-sample values: (tag, metric, reverted ops).
pub(crate) type ValuesKey = (String, usize, BTreeSet<String>);

/// What a previous run recorded.
#[derive(Debug, Default)]
struct Replay {
    calibrations: HashMap<String, FittedQuantizers>,
    evaluations: HashMap<(String, BTreeSet<String>, Vec<usize>), Evaluation>,
    values: HashMap<ValuesKey, BTreeMap<usize, f64>>,
}

impl Replay {
    fn add(&mut self, record: Record) {
        match record {
            Record::Calibration {
                params,
                calibration,
            } => {
                self.calibrations.insert(params, calibration);
            }
            Record::Evaluation {
                tag,
                reverted,
                evaluation,
            } => {
                let key = (tag, reverted, evaluation.indices.clone());
                self.evaluations.insert(key, evaluation);
            }
            Record::Values {
                tag,
                metric,
                reverted,
                indices,
                values,
            } => {
                let known = self.values.entry((tag, metric, reverted)).or_default();
                known.extend(indices.into_iter().zip(values));
            }
        }
    }
}

/// The journal: what a previous run recorded (to replay) and where this run's records go.
#[derive(Debug, Default)]
pub struct Journal {
    file: Option<(PathBuf, std::fs::File)>,
    replay: Replay,
}

impl Journal {
    /// A journal kept nowhere: nothing to replay, records dropped.
    pub fn in_memory() -> Journal {
        Journal::default()
    }

    /// The journal at `file` for a run whose input has fingerprint `input`: replayed when it exists (and is
    /// of this version and input), created otherwise.
    pub fn open(file: &Path, input: &str) -> Result<Journal> {
        let mut replay = Replay::default();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let mut lines = text.split_inclusive('\n');
                check_header(file, lines.next(), input)?;
                for line in lines {
                    match serde_json::from_str::<Record>(line.trim_end()) {
                        Ok(record) => replay.add(record),
                        // A kill can cut the last line short; anything else is damage.
                        Err(_) if !line.ends_with('\n') => break,
                        Err(e) => {
                            return Err(Error::Config(format!(
                                "the journal '{}' is damaged: {e}",
                                file.display()
                            )))
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let header = Header {
                    aquant_journal: JOURNAL_VERSION,
                    input: input.to_owned(),
                };
                let line = serde_json::to_string(&header).expect("a header encodes") + "\n";
                std::fs::write(file, line).map_err(|e| Error::io("writing", file, e))?;
            }
            Err(e) => return Err(Error::io("reading", file, e)),
        }
        let handle = std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map_err(|e| Error::io("opening", file, e))?;
        Ok(Journal {
            file: Some((file.to_owned(), handle)),
            replay,
        })
    }

    fn append(&mut self, record: &Record) -> Result<()> {
        let Some((path, handle)) = &mut self.file else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Config(format!("encoding a journal record: {e}")))?;
        line.push(b'\n');
        handle
            .write_all(&line)
            .map_err(|e| Error::io("writing", &*path, e))
    }

    /// The calibration a previous run recorded for quantization parameters `params` (their JSON form).
    pub fn calibration(&self, params: &str) -> Option<FittedQuantizers> {
        self.replay.calibrations.get(params).cloned()
    }

    /// Records a calibration.
    pub fn record_calibration(
        &mut self,
        params: &str,
        calibration: &FittedQuantizers,
    ) -> Result<()> {
        self.append(&Record::Calibration {
            params: params.to_owned(),
            calibration: calibration.clone(),
        })
    }

    /// The evaluation a previous run recorded under `tag` with `reverted` ops in FP32 on `indices`.
    pub fn evaluation(
        &self,
        tag: &str,
        reverted: &BTreeSet<String>,
        indices: &[usize],
    ) -> Option<Evaluation> {
        let key = (tag.to_owned(), reverted.clone(), indices.to_vec());
        self.replay.evaluations.get(&key).cloned()
    }

    /// Records an evaluation.
    pub fn record_evaluation(
        &mut self,
        tag: &str,
        reverted: &BTreeSet<String>,
        evaluation: &Evaluation,
    ) -> Result<()> {
        self.append(&Record::Evaluation {
            tag: tag.to_owned(),
            reverted: reverted.clone(),
            evaluation: evaluation.clone(),
        })
    }

    /// Per-sample values (by dataset index) a previous run recorded for a ranking candidate.
    pub(crate) fn values(&self, key: &ValuesKey) -> Option<&BTreeMap<usize, f64>> {
        self.replay.values.get(key)
    }

    /// Records a ranking candidate's values on samples `indices`.
    pub(crate) fn record_values(
        &mut self,
        key: &ValuesKey,
        indices: &[usize],
        values: &[f64],
    ) -> Result<()> {
        self.append(&Record::Values {
            tag: key.0.clone(),
            metric: key.1,
            reverted: key.2.clone(),
            indices: indices.to_vec(),
            values: values.to_vec(),
        })
    }
}

fn check_header(file: &Path, line: Option<&str>, input: &str) -> Result<()> {
    let header: Option<Header> = line.and_then(|l| serde_json::from_str(l.trim_end()).ok());
    let refuse = |why: String| {
        Err(Error::Config(format!(
            "the journal '{}' {why}; remove it to start afresh",
            file.display()
        )))
    };
    match header {
        None => refuse("is not an aquant journal (no header line)".into()),
        Some(h) if h.aquant_journal != JOURNAL_VERSION => refuse(format!(
            "has format version {}, this aquant reads version {JOURNAL_VERSION}",
            h.aquant_journal
        )),
        Some(h) if h.input != input => refuse(
            "was written for another input (the model, data, parameters or engine differ)".into(),
        ),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values whose shortest decimal forms parse back exactly only with a correct float parser.
    fn evaluation() -> Evaluation {
        Evaluation {
            indices: vec![0, 1],
            metrics: vec![crate::eval::MetricValue {
                name: "agreement".into(),
                value: 59.0 / 60.0,
                per_sample: vec![0.1 + 0.2, 1.0 / 3.0],
                resampled: vec![0.7, 1.0 / 7.0],
            }],
            seconds: 0.0,
        }
    }

    #[test]
    fn records_are_appended_lines_replayed_by_the_next_run_only_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.jsonl");
        let mut journal = Journal::open(&file, "input-a").unwrap();
        let reverted: BTreeSet<String> = ["conv".to_string()].into();
        journal
            .record_evaluation("tract", &reverted, &evaluation())
            .unwrap();
        let key = ("tract".to_string(), 0, reverted.clone());
        journal.record_values(&key, &[4, 2], &[1.0, 0.0]).unwrap();
        // Not replayed within the run that recorded it (that would be reuse, a separate lever).
        assert!(journal.evaluation("tract", &reverted, &[0, 1]).is_none());
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.starts_with(&format!("{{\"aquant_journal\":{JOURNAL_VERSION},")),
            "{text}"
        );

        // A kill mid-write leaves a partial last line: ignored.
        std::fs::write(&file, format!("{text}{{\"evaluation\":{{\"ta")).unwrap();
        let journal = Journal::open(&file, "input-a").unwrap();
        assert_eq!(
            journal.evaluation("tract", &reverted, &[0, 1]),
            Some(evaluation())
        );
        assert!(journal.evaluation("ort", &reverted, &[0, 1]).is_none());
        let values = journal.values(&key).unwrap();
        assert_eq!(values.get(&4), Some(&1.0));
        assert_eq!(values.get(&2), Some(&0.0));
    }

    #[test]
    fn a_journal_of_another_input_or_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.jsonl");
        Journal::open(&file, "input-a").unwrap();
        let error = Journal::open(&file, "input-b").unwrap_err().to_string();
        assert!(error.contains("another input"), "{error}");
        std::fs::write(&file, "{\"aquant_journal\":1,\"input\":\"input-a\"}\n").unwrap();
        let error = Journal::open(&file, "input-a").unwrap_err().to_string();
        assert!(error.contains("format version 1"), "{error}");
        std::fs::write(&file, "{\"calibrations\":[]}").unwrap();
        let error = Journal::open(&file, "input-a").unwrap_err().to_string();
        assert!(error.contains("not an aquant journal"), "{error}");
    }
}
