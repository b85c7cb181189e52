//! The phases after the restore loop: the deployed check (the model to be saved judged on the engine it is
//! deployed on, which takes over the judging once if it misses the target) and the looser targets (each gets
//! the first model of the kept path that meets it there). See the restorer's module doc for the machine.

use std::collections::BTreeSet;

use crate::cpu::CpuFeatures;
use crate::error::{Error, Result};
use crate::eval::Evaluation;
use crate::search::lab::Lab;
use crate::search::limits::Limits;
use crate::search::report::{DeployedMetric, DeployedReport, StopReason};

use super::{PathPoint, Phase, Restorer, TargetVerdict};

/// A model's evaluation on the deployed engine, and whether it was the search's own (same engine and bytes).
struct Deployed {
    evaluation: Evaluation,
    reused: bool,
}

impl<L: Lab> Restorer<'_, L> {
    /// Judges the model to be saved on the deployed engine. When the search met the target and the deployed
    /// engine does not, that engine becomes the judge and the loop goes on (once).
    pub(super) fn deployed_check(&mut self, stop: StopReason) -> Result<Phase> {
        // The search is over (a deployed miss starts a new ranking on another judge): what the lab keeps for
        // the ranking's next scorer would only add to the peak of the deployed check and of the analyses.
        self.ranking = None;
        self.lab.end_ranking();
        if self.lab.deployed().is_none() {
            return Ok(Phase::Targets(stop));
        }
        let final_state = self.final_state().clone();
        let reused = self.lab.judge_is_deployed();
        let evaluation = if reused {
            final_state.evaluation.clone()
        } else {
            self.lab.evaluate_deployed(&final_state.reverted)?
        };
        let judged = self
            .limits
            .judged(self.metrics, &evaluation, self.reference.as_ref());
        let met = self.limits.met(&judged);
        if stop == StopReason::TargetMet && !met && !self.continued {
            self.continued = true;
            self.lab.judge_on_deployed()?;
            let state =
                self.evaluate_state(final_state.reverted, "re-evaluation (deployed engine)")?;
            self.best = Some(state.clone());
            self.current = Some(state);
            return Ok(Phase::Restore);
        }
        let limits = self.limits.clone();
        let deployed = Deployed { evaluation, reused };
        self.deployed = Some(self.deployed_report(&final_state.reverted, deployed, &limits)?);
        Ok(Phase::Targets(if stop == StopReason::TargetMet && !met {
            StopReason::DeployedMissed
        } else {
            stop
        }))
    }

    /// The report of the model `reverted`, measured as `deployed` says on the deployed engine, against
    /// `limits`; its latency is timed there.
    fn deployed_report(
        &mut self,
        reverted: &BTreeSet<String>,
        deployed: Deployed,
        limits: &Limits,
    ) -> Result<DeployedReport> {
        let engine = self.lab.deployed().ok_or_else(|| {
            Error::Config("no deployed engine to judge the saved model on".into())
        })?;
        let evaluation = &deployed.evaluation;
        let drops = limits.drops(self.metrics, evaluation);
        let judged = limits.judged(self.metrics, evaluation, self.reference.as_ref());
        let latency = self.lab.deployed_latency(reverted)?;
        Ok(DeployedReport {
            latency,
            engine: engine.name,
            version: engine.version,
            batch: engine.batch,
            settings: engine.settings,
            cpu: CpuFeatures::detect(),
            metrics: self
                .metrics
                .iter()
                .zip(&evaluation.metrics)
                .enumerate()
                .map(|(i, (m, v))| DeployedMetric {
                    name: m.name().into(),
                    value: v.value,
                    drop: drops[i],
                    judged_drop: limits.confidence.map(|_| judged[i]),
                    allowed_drop: limits.allowed[i],
                })
                .collect(),
            target_met: limits.met(&judged),
            continued: self.continued,
            reused: deployed.reused,
        })
    }

    /// Gives each looser target its model (see the module's doc).
    pub(super) fn targets(&mut self, stop: StopReason) -> Result<Phase> {
        for max_drop in self.control.maximal_drop.looser() {
            let target = self.target(max_drop)?;
            self.targets.push(target);
        }
        Ok(Phase::Done(stop))
    }

    /// The first model of the kept path that meets `max_drop` on the search's judge and on the deployed
    /// engine; when the deployed engine misses every one, the last it judged; when none meets it at all, the
    /// model the run returns, unjudged.
    fn target(&mut self, max_drop: f64) -> Result<TargetVerdict> {
        let limits = Limits {
            allowed: (self.limits.baselines.iter())
                .map(|b| self.control.allowed_drop_at(max_drop, *b))
                .collect(),
            ..self.limits.clone()
        };
        let meeting: Vec<PathPoint> = (self.path.iter())
            .filter(|p| p.kept && limits.met(&p.judged))
            .cloned()
            .collect();
        let verdict = |point: PathPoint, met, deployed| TargetVerdict {
            max_drop,
            point,
            allowed: limits.allowed.clone(),
            met,
            deployed,
        };
        let mut missed = None;
        for point in meeting {
            if self.lab.deployed().is_none() {
                return Ok(verdict(point, true, None));
            }
            let deployed = match point.on_deployed {
                true => Deployed {
                    evaluation: point.evaluation.clone(),
                    reused: true,
                },
                false => Deployed {
                    evaluation: self.lab.evaluate_deployed(&point.reverted)?,
                    reused: false,
                },
            };
            let report = self.deployed_report(&point.reverted, deployed, &limits)?;
            if report.target_met {
                return Ok(verdict(point, true, Some(report)));
            }
            missed = Some((point, report));
        }
        if let Some((point, report)) = missed {
            return Ok(verdict(point, false, Some(report)));
        }
        let last = self.final_state().clone();
        let point = (self.path.iter().rev())
            .find(|p| p.reverted == last.reverted)
            .cloned()
            .unwrap_or_else(|| self.point_of(None, &last, true));
        Ok(verdict(point, false, None))
    }
}
