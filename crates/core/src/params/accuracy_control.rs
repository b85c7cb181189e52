//! Parameters of accuracy control (POT AccuracyAwareQuantization / NNCF `quantize_with_accuracy_control`).
//!
//! Field names are POT's config keys, NNCF's names are serde aliases; defaults are the references'. Like
//! [`crate::quantize::QuantizationParams`], this struct is the schema configs are read with, and (behind the
//! `clap` feature) the definition of the command line's flags: each field's doc comment is its `--help`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::params::{Deploy, Precision, QuantizationParams, TargetDevice};

/// How the allowed drop is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DropType {
    /// `baseline − value` (sign flipped for higher-worse metrics).
    #[default]
    Absolute,
    /// The absolute drop divided by `|baseline|`.
    Relative,
}

/// What ranks the groups of quantizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum RankingScore {
    /// The controlled metric when it has per-sample values; the output NMSE when it is dataset-level (mAP, F1,
    /// a validation function returning one number).
    #[default]
    Auto,
    /// The controlled metric on the ranking subset (it must have per-sample values).
    Metric,
    /// The normalized MSE between each candidate's outputs and FP32's on the ranking subset, lowest first;
    /// the ranking subset is the samples whose INT8 outputs depart from FP32's most (POT's and NNCF's way
    /// for metrics without per-sample values).
    Nmse,
}

/// The allowed drop: one target, or several met by one search (`0.001,0.003,0.01`). The search runs to the
/// tightest; each looser one gets the first model on the search's path that meets it, so a user who does not
/// know their target in advance sees what each extra point of accuracy costs without a search per target.
///
/// Read from a number or a list of numbers, and written back the same way: one target serialises as the
/// number it always was, so single-target configs, journals and reports do not change.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxDrop(Vec<f64>);

impl MaxDrop {
    /// The tightest target: the one the search runs to.
    pub fn tightest(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Every target other than the tightest, loosest last.
    pub fn looser(&self) -> Vec<f64> {
        let mut looser: Vec<f64> = self.0.clone();
        looser.sort_by(f64::total_cmp);
        looser.remove(0);
        looser
    }

    /// Whether several targets were given.
    pub fn several(&self) -> bool {
        self.0.len() > 1
    }

    /// Refuses an empty list, a target that is not a number ≥ 0, and a target named twice.
    fn validate(&self) -> Result<()> {
        if let Some(bad) = self.0.iter().find(|d| !(d.is_finite() && **d >= 0.0)) {
            return Err(Error::Config(format!(
                "maximal_drop must be a number ≥ 0, not {bad}"
            )));
        }
        if self.0.is_empty() {
            return Err(Error::Config(
                "maximal_drop: give at least one target".into(),
            ));
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Config(format!(
                "maximal_drop {self}: a target is named twice"
            )));
        }
        Ok(())
    }
}

impl From<f64> for MaxDrop {
    fn from(drop: f64) -> Self {
        MaxDrop(vec![drop])
    }
}

impl From<Vec<f64>> for MaxDrop {
    fn from(drops: Vec<f64>) -> Self {
        MaxDrop(drops)
    }
}

/// `0.001,0.003,0.01`, as the command line takes it.
impl FromStr for MaxDrop {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        text.split(',')
            .map(|part| {
                part.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("'{part}' is not a number"))
            })
            .collect::<std::result::Result<Vec<f64>, String>>()
            .map(MaxDrop)
    }
}

impl fmt::Display for MaxDrop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(f64::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for MaxDrop {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_f64(*one),
            several => several.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MaxDrop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Drops;
        impl<'de> Visitor<'de> for Drops {
            type Value = MaxDrop;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number (f64) or a list of numbers")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<MaxDrop, E> {
                Ok(MaxDrop(vec![v]))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<MaxDrop, E> {
                Ok(MaxDrop(vec![v as f64]))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<MaxDrop, E> {
                Ok(MaxDrop(vec![v as f64]))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<MaxDrop, A::Error> {
                let mut drops = Vec::new();
                while let Some(drop) = seq.next_element::<f64>()? {
                    drops.push(drop);
                }
                Ok(MaxDrop(drops))
            }
        }
        deserializer.deserialize_any(Drops)
    }
}

/// One controlled metric (POT `metrics: [{name, baseline_value}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTarget {
    /// Metric name.
    pub name: String,
    /// FP32 value to compare with; when every metric has one, the FP32 model is not evaluated on the full set.
    #[serde(default)]
    pub baseline_value: Option<f64>,
}

/// `NAME=VALUE`: a metric and its FP32 baseline, as the command line's `--baseline` gives them.
impl FromStr for MetricTarget {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| format!("'{text}' is not NAME=VALUE"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("'{text}': '{value}' is not a number"))?;
        Ok(MetricTarget {
            name: name.to_string(),
            baseline_value: Some(value),
        })
    }
}

/// What reverting an op returns to FP32 (NNCF `restore_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(
    feature = "clap",
    derive(clap::ValueEnum),
    value(rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum RestoreMode {
    /// Activations and weights: reverted ops run fully in FP32 with their original weights and biases.
    #[default]
    ActivationsAndWeights,
    /// Only activations: reverted ops keep int8 weights (weight-only quantization) and their original bias.
    OnlyActivations,
}

/// Everything accuracy control takes on top of the base algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyControlParams {
    /// Allowed drop of each metric (POT maximal_drop, NNCF max_drop); several comma-separated targets
    /// (0.001,0.003,0.01) run one search to the tightest and save, for each looser one, the first model on its
    /// path that meets it (`OUT/max_drop_<value>/`).
    #[serde(alias = "max_drop")]
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "max-drop",
            visible_alias = "maximal-drop",
            value_name = "DROP[,DROP...]",
            default_value_t = MaxDrop::from(0.01)
        )
    )]
    pub maximal_drop: MaxDrop,
    /// How the drop is measured: absolute, or relative to the FP32 value.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = DropType::Absolute))]
    pub drop_type: DropType,
    /// Samples used to rank groups (default min(N, 300)).
    #[cfg_attr(feature = "clap", arg(long))]
    pub ranking_subset_size: Option<usize>,
    /// Most revert steps, precision-ladder steps included (POT max_iter_num, NNCF max_num_iterations; default
    /// unlimited).
    #[serde(alias = "max_num_iterations")]
    #[cfg_attr(feature = "clap", arg(long = "max-iter", value_name = "N"))]
    pub max_iter_num: Option<usize>,
    /// Roll back a revert that increased the drop, unless --no-use-prev-if-drop-increase (which keeps it).
    #[cfg_attr(
        feature = "clap",
        arg(long = "no-use-prev-if-drop-increase", action = clap::ArgAction::SetFalse)
    )]
    pub use_prev_if_drop_increase: bool,
    /// If the performance preset fails, retry with the mixed preset before reverting.
    #[cfg_attr(feature = "clap", arg(long))]
    pub convert_to_mixed_preset: bool,
    /// Known FP32 values of the metrics (POT metrics; on the command line NAME=VALUE): when every metric has one,
    /// the FP32 model is not evaluated on the full set.
    #[cfg_attr(
        feature = "clap",
        arg(long = "baseline", value_delimiter = ',', value_name = "NAME=VALUE")
    )]
    pub metrics: Vec<MetricTarget>,
    /// With baselines: fraction of the validation set on which FP32 and INT8 are compared sample by sample.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.5))]
    pub metric_subset_ratio: f64,
    /// Grid-search range estimator, bias correction and preset on the ranking subset before reverting.
    #[cfg_attr(feature = "clap", arg(long))]
    pub tune_hyperparams: bool,
    /// What a revert returns to FP32.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_enum, default_value_t = RestoreMode::ActivationsAndWeights)
    )]
    pub restore_mode: RestoreMode,
    /// What ranks groups: auto (the metric, or for a dataset-level metric the output NMSE against FP32), metric,
    /// or nmse (lowest first).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_enum, default_value_t = RankingScore::Auto)
    )]
    pub ranking_score: RankingScore,
    /// The precision ladder a group climbs, one step at a time, when it must move: a comma-separated list of
    /// w8a16, w16a16, w16a8, dynamic, fp32 (the last step fp32; default fp32, a plain revert). Each step is
    /// ranked and kept or rolled back like a revert; a step rolled back sends the group to the next one.
    /// dynamic: the group's MatMuls quantize their input at run time (ONNX Runtime's DynamicQuantizeMatMul;
    /// deployment on ONNX Runtime only), a group without such a MatMul skips it. target_device GNA: 16-bit
    /// steps only (default w16a16).
    #[serde(alias = "precision_ladder")]
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', value_name = "STEPS", default_values_t = vec![Precision::Fp32])
    )]
    pub fallback: Vec<Precision>,
    /// Fraction of the validation set held out from the search (0: none): after it, FP32 and the saved model
    /// are evaluated there, on the deployed engine, and the report's confirmation says whether the drop holds
    /// on samples the search never saw. A seeded split (--seed).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "FRACTION", default_value_t = 0.0)
    )]
    pub holdout_fraction: f64,
    /// Confidence level of the target (off: the point estimate, as POT and NNCF judge): the search goes on until
    /// the upper end of each drop's two-sided interval at this level (from the paired per-sample values of FP32
    /// and the model on the validation set, or a built-in dataset-level metric's bootstrap resamples) is within
    /// the allowed drop, which rules out a target met by the luck of a small set. Needs a metric with an interval
    /// (not a validation function or a POT metric) and FP32 measured, not given as baseline_value.
    #[cfg_attr(feature = "clap", arg(long, value_name = "LEVEL"))]
    pub confidence: Option<f64>,
    /// Resamples of the paired bootstrap that gives the interval of a drop whose per-sample values are not all
    /// 0 or 1 (a loss, an error), or of a dataset-level metric's drop (mAP, F1: scored on each resample); seeded,
    /// so the same run reports the same interval.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = 2000))]
    pub bootstrap_samples: usize,
}

impl Default for AccuracyControlParams {
    fn default() -> Self {
        AccuracyControlParams {
            maximal_drop: MaxDrop::from(0.01),
            drop_type: DropType::Absolute,
            ranking_subset_size: None,
            max_iter_num: None,
            use_prev_if_drop_increase: true,
            convert_to_mixed_preset: false,
            metrics: Vec::new(),
            metric_subset_ratio: 0.5,
            tune_hyperparams: false,
            restore_mode: RestoreMode::ActivationsAndWeights,
            ranking_score: RankingScore::Auto,
            fallback: vec![Precision::Fp32],
            holdout_fraction: 0.0,
            confidence: None,
            bootstrap_samples: 2000,
        }
    }
}

impl AccuracyControlParams {
    /// Checks values no type can rule out.
    pub fn validate(&self) -> Result<()> {
        self.maximal_drop.validate()?;
        if self.maximal_drop.several() && self.holdout_fraction > 0.0 {
            return Err(Error::Config(format!(
                "maximal_drop {}: several targets save several models, and holdout_fraction confirms one; \
                 give one target with a hold-out, or no hold-out",
                self.maximal_drop
            )));
        }
        if self.bootstrap_samples == 0 {
            return Err(Error::Config("bootstrap_samples must be at least 1".into()));
        }
        if self.ranking_subset_size == Some(0) {
            return Err(Error::Config(
                "ranking_subset_size must be at least 1".into(),
            ));
        }
        if !(self.metric_subset_ratio > 0.0 && self.metric_subset_ratio <= 1.0) {
            return Err(Error::Config(format!(
                "metric_subset_ratio must be in (0, 1], not {}",
                self.metric_subset_ratio
            )));
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return Err(Error::Config(format!(
                "holdout_fraction must be in [0, 1), not {}",
                self.holdout_fraction
            )));
        }
        self.validate_confidence()?;
        if let Some(t) = self
            .metrics
            .iter()
            .find(|t| t.baseline_value.is_some_and(|b| !b.is_finite()))
        {
            return Err(Error::Config(format!(
                "baseline_value of metric '{}' is not a number",
                t.name
            )));
        }
        Ok(())
    }

    /// A confidence level is a probability, and the interval it asks for pairs FP32's per-sample values with the
    /// model's: given baselines skip measuring them.
    fn validate_confidence(&self) -> Result<()> {
        let Some(level) = self.confidence else {
            return Ok(());
        };
        if !(level > 0.0 && level < 1.0) {
            return Err(Error::Config(format!(
                "confidence must be in (0, 1), not {level}"
            )));
        }
        if let Some(t) = self.metrics.iter().find(|t| t.baseline_value.is_some()) {
            return Err(Error::Config(format!(
                "confidence needs FP32's per-sample values, which baseline_value of metric '{}' skips measuring",
                t.name
            )));
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and the precision ladder as `quantization` climbs it (GNA: 16-bit steps
    /// only, default w16a16; elsewhere the last step fp32; the dynamic step on ONNX Runtime only).
    pub fn validate_for(&self, quantization: &QuantizationParams) -> Result<()> {
        self.validate()?;
        let device = quantization.target_device;
        let ladder = &self.for_device(device).fallback;
        check_ladder(ladder, device)?;
        check_dynamic_step(ladder, quantization.deploy_engine())
    }

    /// These parameters with the ladder `device` climbs: GNA's default is `w16a16` (POT's AccuracyAwareGNA
    /// moves 8-bit weights to 16 bits, never to FP32), where the default `fp32` would mean nothing.
    pub(crate) fn for_device(&self, device: TargetDevice) -> AccuracyControlParams {
        let mut control = self.clone();
        if device == TargetDevice::Gna && control.fallback == [Precision::Fp32] {
            control.fallback = vec![Precision::W16A16];
        }
        control
    }

    /// The drop the tightest target allows for a metric whose baseline is `baseline`, in the metric's own
    /// units.
    pub fn allowed_drop(&self, baseline: f64) -> f64 {
        self.allowed_drop_at(self.maximal_drop.tightest(), baseline)
    }

    /// The drop the target `max_drop` allows for a metric whose baseline is `baseline` (`drop_type` applied).
    pub fn allowed_drop_at(&self, max_drop: f64, baseline: f64) -> f64 {
        match self.drop_type {
            DropType::Absolute => max_drop,
            DropType::Relative => max_drop * baseline.abs(),
        }
    }
}

/// Refuses a ladder the search cannot climb: empty, a step named twice, or a last step other than FP32 —
/// except for GNA, whose top is 16-bit weights (POT's AccuracyAwareGNA never leaves integers) and whose
/// ladder may hold 16-bit steps only.
fn check_ladder(ladder: &[Precision], device: TargetDevice) -> Result<()> {
    let named: Vec<&str> = ladder.iter().map(|p| p.name()).collect();
    let refuse = |why: &str| {
        Err(Error::Config(format!(
            "fallback '{}': {why}",
            named.join(",")
        )))
    };
    if ladder.is_empty() {
        return refuse("give at least one step (fp32 reverts, as POT does)");
    }
    if ladder.iter().collect::<BTreeSet<_>>().len() != ladder.len() {
        return refuse("a step is named twice");
    }
    let gna = device == TargetDevice::Gna;
    let fp32_at = ladder.iter().position(|p| *p == Precision::Fp32);
    match (gna, fp32_at) {
        (true, _) if !ladder.iter().all(|p| p.is_sixteen_bit()) => refuse(
            "target_device GNA runs static integers only: its ladder is 16-bit steps (w16a16 by default), \
             never dynamic or fp32",
        ),
        (false, None) => refuse("the last step must be fp32 (a group that no 16-bit step helps is reverted)"),
        (false, Some(i)) if i + 1 != ladder.len() => refuse("fp32 must be the last step"),
        _ => Ok(()),
    }
}

/// Refuses the dynamic step where no engine runs it: OpenVINO (an IR has no run-time quantizer; POT's and
/// NNCF's OpenVINO placement is static). GNA's ladder is refused by [`check_ladder`] already.
fn check_dynamic_step(ladder: &[Precision], deploy: Deploy) -> Result<()> {
    if ladder.contains(&Precision::Dynamic) && deploy != Deploy::Ort {
        return Err(Error::Config(
            "fallback step 'dynamic' is ONNX Runtime's DynamicQuantizeMatMul: deploy on ONNX Runtime \
             (--deploy ort, ONNX output), or leave the step out"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders_are_checked() {
        use Precision::*;
        assert!(check_ladder(&[Fp32], TargetDevice::Any).is_ok());
        assert!(check_ladder(&[W8A16, Fp32], TargetDevice::Cpu).is_ok());
        assert!(check_ladder(&[W16A16], TargetDevice::Gna).is_ok());
        for bad in [&[][..], &[W8A16], &[Fp32, W8A16], &[W8A16, W8A16, Fp32]] {
            assert!(check_ladder(bad, TargetDevice::Cpu).is_err(), "{bad:?}");
        }
        assert!(check_ladder(&[W16A16, Fp32], TargetDevice::Gna).is_err());
        assert!(check_ladder(&[Dynamic, Fp32], TargetDevice::Any).is_ok());
        assert!(check_ladder(&[Dynamic, W16A16], TargetDevice::Gna).is_err());
    }

    #[test]
    fn several_targets_read_as_a_list_and_one_stays_a_number() {
        let one: MaxDrop = serde_json::from_str("0.01").unwrap();
        assert_eq!(serde_json::to_string(&one).unwrap(), "0.01");
        let three: MaxDrop = serde_json::from_str("[0.01, 0.001, 0.003]").unwrap();
        assert_eq!(
            (three.tightest(), three.looser()),
            (0.001, vec![0.003, 0.01])
        );
        assert_eq!(serde_json::to_string(&three).unwrap(), "[0.01,0.001,0.003]");
        assert_eq!(
            "0.001, 0.01".parse::<MaxDrop>().unwrap(),
            vec![0.001, 0.01].into()
        );
        assert!("0.001,big"
            .parse::<MaxDrop>()
            .unwrap_err()
            .contains("'big'"));
        for (bad, why) in [
            (vec![], "at least one"),
            (vec![0.01, 0.01], "named twice"),
            (vec![0.01, -1.0], "≥ 0"),
        ] {
            let control = AccuracyControlParams {
                maximal_drop: bad.into(),
                ..Default::default()
            };
            let error = control.validate().unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
        let held_out = AccuracyControlParams {
            maximal_drop: vec![0.001, 0.01].into(),
            holdout_fraction: 0.2,
            ..Default::default()
        };
        let error = held_out.validate().unwrap_err().to_string();
        assert!(error.contains("holdout_fraction"), "{error}");
    }

    #[test]
    fn the_dynamic_step_needs_onnx_runtime() {
        let control = AccuracyControlParams {
            fallback: vec![Precision::Dynamic, Precision::Fp32],
            ..Default::default()
        };
        let mut quantization = QuantizationParams::default();
        assert!(control.validate_for(&quantization).is_ok());
        quantization.deploy = Some(Deploy::Openvino);
        let error = control.validate_for(&quantization).unwrap_err().to_string();
        assert!(
            error.contains("'dynamic'") && error.contains("ONNX Runtime"),
            "{error}"
        );
    }
}
