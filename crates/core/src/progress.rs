//! Progress reporting without a UI dependency: the library reports, the binary draws (indicatif).

/// Receives progress of long operations (evaluations, calibration, ranking passes).
pub trait Progress: Sync {
    /// A new task of `total` units starts.
    fn start(&self, label: &str, total: u64);
    /// `units` more units are done.
    fn advance(&self, units: u64);
    /// The current task is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
