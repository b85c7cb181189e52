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
use crate::quantize::{Precision, Precisions};

const SEPARATOR: char = '@';

/// The entry of `op` at `precision`.
pub(crate) fn entry(op: &str, precision: Precision) -> String {
    match precision {
        Precision::Fp32 => op.to_string(),
        p => format!("{op}{SEPARATOR}{p}"),
    }
}

/// The op and precision an entry names.
pub(crate) fn parse(entry: &str) -> (&str, Precision) {
    match entry.rsplit_once(SEPARATOR) {
        Some((op, step)) => match step.parse::<Precision>() {
            Ok(p) if p != Precision::Fp32 => (op, p),
            _ => (entry, Precision::Fp32),
        },
        None => (entry, Precision::Fp32),
    }
}

/// The precisions a candidate's entries give.
pub(crate) fn precisions(entries: &BTreeSet<String>) -> Precisions {
    entries
        .iter()
        .map(|e| {
            let (op, p) = parse(e);
            (op.to_string(), p)
        })
        .collect()
}

/// The ops in FP32 among `entries`.
pub(crate) fn fp32_ops(entries: &BTreeSet<String>) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| parse(e).1 == Precision::Fp32)
        .cloned()
        .collect()
}

/// `base` with the ops of `moved` (entries of one group at its new step) at their new precision.
pub(crate) fn with_moved(base: &BTreeSet<String>, moved: &[String]) -> BTreeSet<String> {
    let ops: BTreeSet<&str> = moved.iter().map(|e| parse(e).0).collect();
    base.iter()
        .filter(|e| !ops.contains(parse(e).0))
        .chain(moved)
        .cloned()
        .collect()
}

/// Refuses op names an entry could not tell apart from a step that keeps quantizers (only when the ladder has
/// one).
pub(crate) fn check_names<'a>(
    ladder: &[Precision],
    ops: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    if !ladder.iter().any(|p| p.is_kept_quantized()) {
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
    fn op_names_are_checked_against_the_ladder() {
        use Precision::*;
        assert!(check_names(&[W8A16, Fp32], ["x@w16a8"]).is_err());
        assert!(check_names(&[Fp32], ["x@w16a8"]).is_ok());
    }
}
