//! A fake [`Lab`] for unit tests: per-sample metric values are scripted, so the whole accuracy-control loop
//! runs in milliseconds and every branch can be staged.
//!
//! A sample's value is the quantized model's scripted value plus the scripted effect of every reverted
//! group (and of every group at a 16-bit rung of the ladder); the "deployed engine" subtracts a scripted penalty unless a given group is reverted.

use std::collections::{BTreeSet, HashMap};

use crate::backend::EngineSettings;
use crate::error::{Error, Result};
use crate::eval::{Evaluation, Latency, MetricValue};
use crate::metric::{confidence, mean, Direction, Metric, SampleMetric, Scoring};
use crate::quantize::{FittedQuantizers, Precision, QuantizationParams};
use crate::search::groups::QuantizerGroup;
use crate::search::lab::{Bench, Deployment, EngineId, Models, RankingCandidate};
use crate::search::ladder;
use crate::search::ranker::{KeepGoing, ScoreRequest, Scorer};

/// Bootstrap resamples a scripted dataset-level metric is scored on.
const RESAMPLES: usize = 500;

/// A metric known by its name, direction, bounds and aggregate only.
pub(crate) struct FakeMetric {
    pub name: &'static str,
    pub direction: Direction,
    pub bounds: Option<(f64, f64)>,
    /// Aggregate by the median instead of the mean.
    pub median: bool,
}

impl FakeMetric {
    pub fn accuracy(name: &'static str) -> Self {
        FakeMetric {
            name,
            direction: Direction::HigherBetter,
            bounds: Some((0.0, 1.0)),
            median: false,
        }
    }
}

impl Metric for FakeMetric {
    fn name(&self) -> &str {
        self.name
    }

    fn direction(&self) -> Direction {
        self.direction
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for FakeMetric {
    fn sample_bounds(&self) -> Option<(f64, f64)> {
        self.bounds
    }

    fn sample_value(
        &self,
        _: &[crate::tensor::Tensor],
        _: &crate::data::Annotation,
        _: Option<&[crate::tensor::Tensor]>,
    ) -> Result<f64> {
        unreachable!("the fake scores from its script")
    }

    fn aggregate(&self, values: &[f64]) -> f64 {
        if !self.median {
            return values.iter().sum::<f64>() / values.len() as f64;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn aggregate_is_mean(&self) -> bool {
        !self.median
    }
}

/// What the fake answers. Values are `[metric][sample]`.
#[derive(Clone, Default)]
pub(crate) struct Script {
    pub fp32: Vec<Vec<f64>>,
    /// The quantized model's values, by variant (`"base"` or the parameters' JSON).
    pub quantized: HashMap<String, Vec<Vec<f64>>>,
    /// Each group's effect when reverted: `[group][metric][sample]`.
    pub effects: Vec<Vec<Vec<f64>>>,
    /// A group's effect at a 16-bit or dynamic rung of the precision ladder, `[metric][sample]` (absent: none;
    /// a group has an op the dynamic step moves only when it has an effect at it).
    pub rung_effects: HashMap<(usize, Precision), Vec<Vec<f64>>>,
    /// The deployed engine: (group whose revert it needs, penalty per sample otherwise), if any.
    pub deployed: Option<(usize, Vec<f64>)>,
    /// Whether the deployed engine is the judge's own (same name and version, same model bytes).
    pub deployed_is_judge: bool,
    /// Metrics that are dataset-level: their evaluations carry the value but no per-sample values.
    pub dataset_level: BTreeSet<usize>,
    /// Each group's revert cost (absent: 0).
    pub costs: HashMap<usize, usize>,
}

impl Script {
    /// The variant key of `params`.
    pub fn key(params: &QuantizationParams) -> String {
        if *params == QuantizationParams::default() {
            "base".into()
        } else {
            serde_json::to_string(params).unwrap()
        }
    }
}

/// The fake lab, with a log of what it was asked.
pub(crate) struct Fake {
    pub script: Script,
    pub variant: String,
    pub judge_deployed: bool,
    /// Work done so far (evaluations and scored samples); an interrupt comes once it reaches `interrupt_at`.
    pub work: usize,
    pub interrupt_at: Option<usize>,
    /// "fp32 [indices]", "scorer base=[..] metric=m", "eval [..]", "requantize key", "save name".
    pub log: Vec<String>,
}

impl Fake {
    pub fn new(script: Script) -> Self {
        Fake {
            script,
            variant: "base".into(),
            judge_deployed: false,
            work: 0,
            interrupt_at: None,
            log: Vec::new(),
        }
    }

    fn work(&mut self) -> Result<()> {
        self.check_interrupt()?;
        self.work += 1;
        Ok(())
    }

    fn value(
        &self,
        reverted: &BTreeSet<String>,
        metric: usize,
        sample: usize,
        deployed: bool,
    ) -> f64 {
        let base = self
            .script
            .quantized
            .get(&self.variant)
            .unwrap_or(&self.script.quantized["base"]);
        let mut v = base[metric][sample];
        for (g, effect) in self.script.effects.iter().enumerate() {
            if reverted.contains(&format!("g{g}")) {
                v += effect[metric][sample];
            }
        }
        for entry in reverted {
            let (op, precision) = ladder::parse(entry);
            let group = op.strip_prefix('g').and_then(|g| g.parse::<usize>().ok());
            if let Some(effect) = group.and_then(|g| self.script.rung_effects.get(&(g, precision)))
            {
                v += effect[metric][sample];
            }
        }
        if let Some((needed, penalty)) = &self.script.deployed {
            if deployed && !reverted.contains(&format!("g{needed}")) {
                v -= penalty[sample];
            }
        }
        v
    }

    /// Metric `m`'s result from its values: their mean, and the values unless the metric is dataset-level,
    /// which instead gives the mean over bootstrap resamples as a real one is scored on them.
    fn metric_value(&self, m: usize, per_sample: Vec<f64>) -> MetricValue {
        let value = mean(&per_sample);
        if !self.script.dataset_level.contains(&m) {
            return MetricValue {
                name: format!("m{m}"),
                value,
                per_sample,
                resampled: Vec::new(),
            };
        }
        let resampled = confidence::resamples(per_sample.len(), RESAMPLES)
            .map(|positions| mean(&positions.iter().map(|&p| per_sample[p]).collect::<Vec<_>>()))
            .collect();
        MetricValue {
            name: format!("m{m}"),
            value,
            per_sample: Vec::new(),
            resampled,
        }
    }

    fn evaluation(
        &self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        deployed: bool,
    ) -> Evaluation {
        let metrics = (0..self.script.fp32.len())
            .map(|m| {
                let per_sample: Vec<f64> = indices
                    .iter()
                    .map(|&i| self.value(reverted, m, i, deployed))
                    .collect();
                self.metric_value(m, per_sample)
            })
            .collect();
        Evaluation {
            indices: indices.to_vec(),
            metrics,
            seconds: 0.0,
        }
    }
}

impl Bench for Fake {
    fn samples(&self) -> usize {
        self.script.fp32[0].len()
    }

    fn tag(&self) -> String {
        format!("fake{} {}", u8::from(self.judge_deployed), self.variant)
    }

    fn evaluate_fp32(&mut self, indices: &[usize]) -> Result<Evaluation> {
        self.work()?;
        self.log.push(format!("fp32 {indices:?}"));
        let metrics = self
            .script
            .fp32
            .iter()
            .enumerate()
            .map(|(m, values)| {
                let per_sample: Vec<f64> = indices.iter().map(|&i| values[i]).collect();
                self.metric_value(m, per_sample)
            })
            .collect();
        Ok(Evaluation {
            indices: indices.to_vec(),
            metrics,
            seconds: 0.0,
        })
    }

    fn evaluate(
        &mut self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        _: &str,
    ) -> Result<Evaluation> {
        self.work()?;
        self.log
            .push(format!("eval {reverted:?} on {}", indices.len()));
        Ok(self.evaluation(reverted, indices, self.judge_deployed))
    }

    fn scorer<'s>(
        &'s mut self,
        base: &BTreeSet<String>,
        members: Vec<RankingCandidate>,
        subset: &[usize],
        metric: usize,
    ) -> Result<Box<dyn Scorer + 's>> {
        self.log
            .push(format!("scorer base={base:?} metric={metric}"));
        Ok(Box::new(FakeScorer {
            lab: self,
            members: members.into_iter().collect(),
            subset: subset.to_vec(),
            metric,
            width: 3,
        }))
    }

    fn end_ranking(&mut self) {
        self.log.push("end ranking".into());
    }

    fn check_interrupt(&self) -> Result<()> {
        match self.interrupt_at {
            Some(n) if self.work >= n => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }
}

impl Models for Fake {
    fn groups(&self) -> Vec<QuantizerGroup> {
        (0..self.script.effects.len())
            .map(|id| {
                let nodes = vec![format!("g{id}")];
                let dynamic = self
                    .script
                    .rung_effects
                    .contains_key(&(id, Precision::Dynamic));
                QuantizerGroup {
                    id,
                    dynamic: if dynamic { nodes.clone() } else { Vec::new() },
                    nodes,
                    tensors: Vec::new(),
                }
            })
            .collect()
    }

    /// Every group's scripted cost in kernels, less those of the groups `reverted` names (`g{id}`, at any
    /// rung): a move then costs the scripted cost of each group it takes out of INT8.
    fn integer_kernels(&self, reverted: &BTreeSet<String>) -> usize {
        let all: usize = self.script.costs.values().sum();
        let out: usize = reverted
            .iter()
            .filter_map(|e| ladder::parse(e).0.strip_prefix('g')?.parse().ok())
            .map(|group: usize| self.script.costs.get(&group).copied().unwrap_or(0))
            .sum();
        all.saturating_sub(out)
    }

    fn requantize(
        &mut self,
        params: &QuantizationParams,
        _: Option<FittedQuantizers>,
    ) -> Result<Option<FittedQuantizers>> {
        self.work()?;
        self.variant = Script::key(params);
        self.log.push(format!("requantize {}", self.variant));
        Ok(None)
    }

    fn save_intermediate(&self, _: &str, _: &BTreeSet<String>) -> Result<()> {
        Ok(())
    }
}

impl Deployment for Fake {
    fn deployed(&self) -> Option<EngineId> {
        self.script.deployed.as_ref().map(|_| EngineId {
            name: "deployed".into(),
            version: "1".into(),
            settings: EngineSettings {
                threads: Some(1),
                precision_hint: None,
                optimization: None,
            },
            batch: 1,
        })
    }

    fn judge_is_deployed(&self) -> bool {
        self.judge_deployed || self.script.deployed_is_judge
    }

    fn evaluate_deployed(&mut self, reverted: &BTreeSet<String>) -> Result<Evaluation> {
        self.work()?;
        self.log.push(format!("deployed {reverted:?}"));
        let all: Vec<usize> = (0..self.samples()).collect();
        Ok(self.evaluation(reverted, &all, true))
    }

    fn judge_on_deployed(&mut self) -> Result<()> {
        self.log.push("judge on deployed".into());
        self.judge_deployed = true;
        Ok(())
    }

    /// The fake lab has no engine to time.
    fn deployed_latency(&mut self, _: &BTreeSet<String>) -> Result<Option<Latency>> {
        Ok(None)
    }
}

/// Scores ranking candidates from the script, sample by sample.
pub(crate) struct FakeScorer<'s> {
    pub lab: &'s mut Fake,
    pub members: HashMap<usize, BTreeSet<String>>,
    pub subset: Vec<usize>,
    pub metric: usize,
    pub width: usize,
}

impl Scorer for FakeScorer<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        let mut results = Vec::new();
        for job in jobs {
            let mut values = Vec::new();
            for position in job.start..until {
                self.lab.work()?;
                let sample = self.subset[position];
                self.lab.log.push(format!("scored {sample}"));
                let reverted = &self.members[&job.group];
                let deployed = self.lab.judge_deployed;
                values.push(self.lab.value(reverted, self.metric, sample, deployed));
                if !keep_going(job.group, &values) {
                    break;
                }
            }
            results.push((job.group, values));
        }
        Ok(results)
    }
}
