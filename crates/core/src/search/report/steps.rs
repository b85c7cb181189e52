//! The revert steps of a run and why it stopped.

use serde::Serialize;

use crate::metric::confidence::percent;
use crate::params::AccuracyControlParams;
use crate::quantize::Precision;

/// One revert attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// 1-based step number.
    pub step: usize,
    /// Group id.
    pub group: usize,
    /// The ops of the group the step moved.
    pub reverted_group: Vec<String>,
    /// The ladder rung the step moved them to (`fp32`: a revert).
    pub precision: Precision,
    /// Value of the controlled metric after the step.
    pub metric: f64,
    /// The controlled metric: the one furthest beyond its limit before the step (`metric` and `drop` are its).
    pub metric_name: String,
    /// Drop of the controlled metric after the step.
    pub drop: f64,
    /// With a confidence level: the upper end of that drop's interval, which the step was judged on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged_drop: Option<f64>,
    /// Whether the revert was kept (false: rolled back because the drop grew).
    pub kept: bool,
    /// What the step led to.
    pub outcome: StepOutcome,
    /// The outcome in words: "target met", "drop decreased", "drop increased: rolled back, re-ranking"…
    pub reason: String,
}

/// What one revert step led to (SPEC §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Every metric is within its limit: the search ends.
    TargetMet,
    /// The drop shrank: kept; the next group of the same ranking comes next.
    DropDecreased,
    /// The drop did not move: kept; the remaining groups are ranked again on the new model.
    NoImprovement,
    /// The drop grew and `use_prev_if_drop_increase` is on: undone; the group is never tried again.
    RolledBack,
    /// The drop grew and `use_prev_if_drop_increase` is off: kept, and the remaining groups re-ranked.
    KeptDespiteIncrease,
}

impl StepOutcome {
    /// Whether the revert stays in the model.
    pub fn kept(self) -> bool {
        self != StepOutcome::RolledBack
    }

    /// Whether the next group comes from a new ranking of the model after this step.
    pub fn reranks(self) -> bool {
        !matches!(self, StepOutcome::TargetMet | StepOutcome::DropDecreased)
    }

    /// The outcome in words.
    pub fn message(self) -> &'static str {
        match self {
            StepOutcome::TargetMet => "target met",
            StepOutcome::DropDecreased => "drop decreased",
            StepOutcome::NoImprovement => "no improvement: re-ranking",
            StepOutcome::RolledBack => "drop increased: rolled back, re-ranking",
            StepOutcome::KeptDespiteIncrease => {
                "drop increased: kept (use_prev_if_drop_increase is off), re-ranking"
            }
        }
    }
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every metric is within its limit (on the deployed engine too, when there is one).
    TargetMet,
    /// `max_iter_num` revert steps were made (rolled-back steps count, as in POT).
    MaxIterations,
    /// Every group was reverted or tried and rolled back.
    NothingLeft,
    /// The run was interrupted; it can be resumed from its journal.
    Interrupted,
    /// The search met the target, but the saved model on the deployed engine does not, even after the
    /// search went on with that engine as the judge.
    DeployedMissed,
    /// With a confidence level: the search ran out of moves with a model whose drops meet the target, but
    /// whose intervals reach past it at that level.
    NotConfident,
    /// With a confidence level: the validation set is too small for any model to meet the target at that level
    /// (even FP32 itself has an interval reaching past the allowed drop), so the search did not start.
    Unprovable,
}

impl StopReason {
    /// The reason in words.
    pub fn message(self, control: &AccuracyControlParams) -> String {
        let max_iter_num = control.max_iter_num;
        match self {
            StopReason::TargetMet => "target met".into(),
            StopReason::MaxIterations => format!(
                "max_iter_num ({}) reached",
                max_iter_num.map_or("unlimited".into(), |n| n.to_string())
            ),
            StopReason::NothingLeft => "every group was tried: nothing left to revert".into(),
            StopReason::Interrupted => {
                "interrupted: the best model so far was saved; continue with --resume".into()
            }
            StopReason::DeployedMissed => {
                "the deployed engine misses the target the search engine met".into()
            }
            StopReason::Unprovable => format!(
                "at {}% confidence no model can meet the target on this validation set: even one identical to \
                 FP32 has an interval reaching past the allowed drop (use more samples or a lower level)",
                percent(control.confidence.unwrap_or_default())
            ),
            StopReason::NotConfident => format!(
                "met on the point estimate, not at {}% confidence: a drop's interval reaches past its limit",
                percent(control.confidence.unwrap_or_default())
            ),
        }
    }
}
