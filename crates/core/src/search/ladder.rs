//! The precision ladder as the search sees it: a candidate is a set of *entries*, one per op that is not at
//! the base precision — the op's name for FP32 (a revert, as before the ladder), `op@w8a16` for an op at a
//! 16-bit step.
//!
//! Keeping candidates as sets of strings keeps everything keyed by them unchanged (the journal, the reuse
//! cache, cohorts, the fake lab): with the default ladder (`fp32` only) a run's journal and report are what
//! they were, and a ladder run's journal replays its 16-bit steps like reverts. An op whose own name ends in
//! `@<step>` would be ambiguous; [`check_names`] refuses such a model when the ladder has 16-bit steps.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::quantize::{Precision, Precisions, TargetDevice};
use crate::search::params::AccuracyControlParams;

const SEPARATOR: char = '@';

/// The entry of `op` at `precision`.
pub(super) fn entry(op: &str, precision: Precision) -> String {
    match precision {
        Precision::Fp32 => op.to_string(),
        p => format!("{op}{SEPARATOR}{p}"),
    }
}

/// The op and precision an entry names.
pub(super) fn parse(entry: &str) -> (&str, Precision) {
    match entry.rsplit_once(SEPARATOR) {
        Some((op, step)) => match step.parse::<Precision>() {
            Ok(p) if p != Precision::Fp32 => (op, p),
            _ => (entry, Precision::Fp32),
        },
        None => (entry, Precision::Fp32),
    }
}

/// The precisions a candidate's entries give.
pub(super) fn precisions(entries: &BTreeSet<String>) -> Precisions {
    entries
        .iter()
        .map(|e| {
            let (op, p) = parse(e);
            (op.to_string(), p)
        })
        .collect()
}

/// The ops in FP32 among `entries`.
pub(super) fn fp32_ops(entries: &BTreeSet<String>) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| parse(e).1 == Precision::Fp32)
        .cloned()
        .collect()
}

/// `base` with the ops of `moved` (entries of one group at its new step) at their new precision.
pub(super) fn with_moved(base: &BTreeSet<String>, moved: &[String]) -> BTreeSet<String> {
    let ops: BTreeSet<&str> = moved.iter().map(|e| parse(e).0).collect();
    base.iter()
        .filter(|e| !ops.contains(parse(e).0))
        .chain(moved)
        .cloned()
        .collect()
}

/// `control` with the ladder `device` climbs: GNA's default is `w16a16` (POT's AccuracyAwareGNA moves 8-bit
/// weights to 16 bits, never to FP32), where the default `fp32` would mean nothing.
pub(super) fn for_device(
    control: &AccuracyControlParams,
    device: TargetDevice,
) -> AccuracyControlParams {
    let mut control = control.clone();
    if device == TargetDevice::Gna && control.fallback == [Precision::Fp32] {
        control.fallback = vec![Precision::W16A16];
    }
    control
}

/// Refuses a ladder the search cannot climb: empty, a step named twice, or a last step other than FP32 —
/// except for GNA, whose top is 16-bit weights (POT's AccuracyAwareGNA never leaves integers) and whose
/// ladder may hold 16-bit steps only.
pub(super) fn check(ladder: &[Precision], device: TargetDevice) -> Result<()> {
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
        (true, Some(_)) => refuse(
            "target_device GNA runs integers only: its ladder is 16-bit steps (w16a16 by default), never fp32",
        ),
        (false, None) => refuse("the last step must be fp32 (a group that no 16-bit step helps is reverted)"),
        (false, Some(i)) if i + 1 != ladder.len() => refuse("fp32 must be the last step"),
        _ => Ok(()),
    }
}

/// Refuses op names an entry could not tell apart from a 16-bit step (only when the ladder has one).
pub(super) fn check_names<'a>(
    ladder: &[Precision],
    ops: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    if !ladder.iter().any(|p| p.is_sixteen_bit()) {
        return Ok(());
    }
    match ops.into_iter().find(|op| parse(op).1 != Precision::Fp32) {
        Some(op) => Err(Error::Config(format!(
            "op '{op}' has a name ending in '{SEPARATOR}<precision>', which the precision ladder uses \
             itself; rename it or use --fallback fp32"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_fp32_is_the_bare_name() {
        assert_eq!(entry("conv", Precision::Fp32), "conv");
        assert_eq!(entry("conv", Precision::W8A16), "conv@w8a16");
        assert_eq!(parse("conv@w8a16"), ("conv", Precision::W8A16));
        assert_eq!(parse("a@b"), ("a@b", Precision::Fp32));
        let base: BTreeSet<String> = ["a@w8a16".into(), "b".into()].into();
        let moved = with_moved(&base, &["a".into()]);
        assert_eq!(moved, ["a".to_string(), "b".into()].into());
        assert_eq!(fp32_ops(&moved).len(), 2);
    }

    #[test]
    fn ladders_are_checked() {
        use Precision::*;
        assert!(check(&[Fp32], TargetDevice::Any).is_ok());
        assert!(check(&[W8A16, Fp32], TargetDevice::Cpu).is_ok());
        assert!(check(&[W16A16], TargetDevice::Gna).is_ok());
        for bad in [&[][..], &[W8A16], &[Fp32, W8A16], &[W8A16, W8A16, Fp32]] {
            assert!(check(bad, TargetDevice::Cpu).is_err(), "{bad:?}");
        }
        assert!(check(&[W16A16, Fp32], TargetDevice::Gna).is_err());
        assert!(check_names(&[W8A16, Fp32], ["x@w16a8"]).is_err());
        assert!(check_names(&[Fp32], ["x@w16a8"]).is_ok());
    }
}
