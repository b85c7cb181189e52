//! Where the time of the evaluations goes: building candidate models, preparing them in the engine
//! (its graph optimisation, "compile"), and running them. Times are summed over threads, so work done on
//! both cores counts twice the wall time it takes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::Session;
use crate::error::Result;
use crate::tensor::Tensor;

/// Counters shared by everything one evaluator runs.
#[derive(Debug, Default)]
pub struct Profile {
    build_ns: AtomicU64,
    builds: AtomicU64,
    prepare_ns: AtomicU64,
    prepares: AtomicU64,
    run_ns: AtomicU64,
    runs: AtomicU64,
}

/// A snapshot of a `Profile` (the run's timer, private to the crate), for reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProfileReport {
    /// Seconds building candidate models (quantizing, reverting, writing the protobuf).
    pub build_s: f64,
    /// Candidate models built.
    pub builds: u64,
    /// Seconds the engine spent preparing models (loading and optimising: its compile step).
    pub prepare_s: f64,
    /// Models (or model suffixes) prepared.
    pub prepares: u64,
    /// Seconds the engine spent running batches.
    pub run_s: f64,
    /// Batches run.
    pub runs: u64,
}

fn add(counter: &AtomicU64, count: &AtomicU64, start: Instant) {
    counter.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    count.fetch_add(1, Ordering::Relaxed);
}

impl Profile {
    /// Times building a model.
    pub fn build<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = f();
        add(&self.build_ns, &self.builds, start);
        result
    }

    /// Times preparing a model; the session it returns times its runs.
    pub fn prepare(
        self: &Arc<Self>,
        f: impl FnOnce() -> Result<Arc<dyn Session>>,
    ) -> Result<Arc<dyn Session>> {
        let start = Instant::now();
        let inner = f()?;
        add(&self.prepare_ns, &self.prepares, start);
        Ok(Arc::new(ProfiledSession {
            inner,
            profile: self.clone(),
        }))
    }

    /// The counters so far.
    pub fn report(&self) -> ProfileReport {
        let seconds = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 * 1e-9;
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProfileReport {
            build_s: seconds(&self.build_ns),
            builds: count(&self.builds),
            prepare_s: seconds(&self.prepare_ns),
            prepares: count(&self.prepares),
            run_s: seconds(&self.run_ns),
            runs: count(&self.runs),
        }
    }
}

struct ProfiledSession {
    inner: Arc<dyn Session>,
    profile: Arc<Profile>,
}

impl Session for ProfiledSession {
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let start = Instant::now();
        let outputs = self.inner.run(inputs);
        add(&self.profile.run_ns, &self.profile.runs, start);
        outputs
    }
}
