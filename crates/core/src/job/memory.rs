//! A memory limit for a run (`--memory-limit`): the threads and the FP32-output cache that fit under it, or a
//! clear error before anything starts.
//!
//! A run's peak resident memory grows with the model's weights, and with the threads: every thread that
//! evaluates a candidate holds an engine session of it, with the engine's own copy of the weights (ONNX
//! Runtime pre-packs them; tract plans them). So the peak is modelled as
//! `fixed + data + weights × (base + per_thread × threads) + reference cache`, with `base` and `per_thread`
//! measured per engine (bench/memory.sh, bench/RESULTS.md): a run picks the most threads whose estimate fits,
//! and gives what is left to the cache of FP32 outputs (up to its default). When even one thread does not fit,
//! the run is refused before the first inference, with the minimum it would need — never killed halfway by
//! the kernel with its journal half written.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::params::{MemoryPlan, DEFAULT_REFERENCE_BUDGET};

/// What one engine's run costs beyond its fixed part, in multiples of the model's encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EngineFactors {
    /// With no thread: the mapped model, aquant's quantized model and analyses, the FP32 reference session.
    base: f64,
    /// For each thread evaluating candidates at once.
    per_thread: f64,
}

/// The engine's measured factors; `None` for an engine whose memory was not measured (OpenVINO), for which a
/// limit is refused rather than guessed.
fn factors(engine: &str) -> Option<EngineFactors> {
    // Measured on the MLPs of bench/memory.sh (Xeon with AMX, avx512_vnni amx_int8, 2 cores, 2026-12-06): peak
    // RSS with RAYON_NUM_THREADS 1 and 2, less `FIXED`, over the model's bytes, rounded up. ONNX Runtime, 420 MB:
    // 2.20 and 2.21 (DefaultQuantization), 2.20 and 2.32 (accuracy control); 1.68 GB, 2 threads: 2.46
    // (DefaultQuantization). A thread costs little since its sessions share the lent weights and the analyses
    // skip pre-packing; where ONNX Runtime refuses to share them (convolutions, whose weights its optimizer
    // rewrites) each thread's session copies them, which no large convolutional model measured yet. tract
    // (DefaultQuantization, 420 MB): 5.42 and 7.13; on an AVX2 EPYC it measured less (bench/RESULTS.md): these
    // are the larger.
    match engine {
        "ort" => Some(EngineFactors {
            base: 2.4,
            per_thread: 0.1,
        }),
        "tract" => Some(EngineFactors {
            base: 3.8,
            per_thread: 1.8,
        }),
        _ => None,
    }
}

/// What any run holds whatever its model: the engine's libraries, the thread stacks, the graph structures.
const FIXED: u64 = 192 << 20;

/// The least the FP32-output cache is given: a chunk of samples' outputs stays whole while it is scored.
const MIN_REFERENCE_BUDGET: u64 = 64 << 20;

/// What a run's memory depends on.
#[derive(Debug, Clone, Copy)]
pub struct MemoryNeeds<'a> {
    /// The engine that calibrates and searches ([`crate::Backend::name`]).
    pub engine: &'a str,
    /// The model's encoded bytes, weights inline.
    pub model_bytes: u64,
    /// The samples' bytes, counted as if every sample of every set were held at once.
    pub data_bytes: u64,
    /// The cores the run may use.
    pub cores: usize,
}

impl MemoryNeeds<'_> {
    /// The bytes of `sets`' samples, from the first sample's size.
    pub fn data_bytes(sets: &[&dyn Dataset]) -> Result<u64> {
        let mut bytes = 0;
        for set in sets.iter().filter(|s| !s.is_empty()) {
            let sample = set.get(0)?;
            let per_sample: usize = sample.inputs.iter().map(|(_, t)| t.byte_len()).sum();
            bytes += (per_sample * set.len()) as u64;
        }
        Ok(bytes)
    }

    /// The estimated peak with `threads` threads and a `reference` cache, in bytes.
    fn estimate(&self, factors: EngineFactors, threads: usize, reference: u64) -> u64 {
        let per_model = factors.base + factors.per_thread * threads as f64;
        FIXED + self.data_bytes + (self.model_bytes as f64 * per_model).ceil() as u64 + reference
    }

    /// The most threads (up to `cores`) whose estimate stays under `limit`, and the cache what is left allows.
    pub fn plan(&self, limit: u64) -> Result<MemoryPlan> {
        let factors = factors(self.engine).ok_or_else(|| {
            Error::Config(format!(
                "memory_limit: how the {} engine's memory grows with the model was not measured; \
                 use --backend ort or tract with a limit, or run without one",
                self.engine
            ))
        })?;
        let fits = |threads: usize| self.estimate(factors, threads, MIN_REFERENCE_BUDGET) <= limit;
        let threads = (1..=self.cores.max(1)).rev().find(|&t| fits(t));
        let Some(threads) = threads else {
            let needs = self.estimate(factors, 1, MIN_REFERENCE_BUDGET);
            return Err(Error::Config(format!(
                "memory_limit {} is below the least this run needs on {}: about {} with one thread \
                 ({} model × {:.1}, {} of data, {} fixed, {} of FP32 outputs)",
                human(limit),
                self.engine,
                human(needs),
                human(self.model_bytes),
                factors.base + factors.per_thread,
                human(self.data_bytes),
                human(FIXED),
                human(MIN_REFERENCE_BUDGET),
            )));
        };
        let spare = limit - self.estimate(factors, threads, 0);
        let reference_budget = spare.min(DEFAULT_REFERENCE_BUDGET as u64) as usize;
        Ok(MemoryPlan {
            limit,
            threads,
            reference_budget,
            estimate: self.estimate(factors, threads, reference_budget as u64),
        })
    }
}

/// Parses a byte count as `--memory-limit` takes it: a number with an optional K, M, G or T suffix (powers of
/// 1024; a trailing `B` or `iB` is allowed): `8G`, `512MiB`, `1.5g`, `2000000000`.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let shift = match unit.trim().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(format!(
                "'{text}': a size is a number with K, M, G or T (8G, 512M)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}': a size is a number with K, M, G or T (8G, 512M)"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{text}': a size must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// `bytes` for a person, in the units `--memory-limit` takes: "1.9 GiB", "401 MiB".
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b => format!("{} MiB", b.div_ceil(1 << 20)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(engine: &str, model_mb: u64) -> MemoryNeeds<'_> {
        MemoryNeeds {
            engine,
            model_bytes: model_mb << 20,
            data_bytes: 32 << 20,
            cores: 4,
        }
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_bytes("8G"), Ok(8 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("2000000000"), Ok(2_000_000_000));
        assert_eq!(parse_bytes(" 64 kb"), Ok(64 << 10));
        for bad in ["", "G", "8X", "-1G", "0", "1e3"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_threads_that_fit_and_the_rest_to_the_cache() {
        let mlp = needs("ort", 420);
        let roomy = mlp.plan(64 << 30).unwrap();
        assert_eq!(roomy.threads, 4);
        assert_eq!(roomy.reference_budget, DEFAULT_REFERENCE_BUDGET);
        assert!(roomy.estimate <= 64 << 30);
        // Each step down in the limit costs threads before it costs the cache its minimum.
        let one = mlp.estimate(factors("ort").unwrap(), 1, MIN_REFERENCE_BUDGET);
        let two = mlp.estimate(factors("ort").unwrap(), 2, MIN_REFERENCE_BUDGET);
        assert_eq!(mlp.plan(two).unwrap().threads, 2);
        let tight = mlp.plan(two - 1).unwrap();
        assert_eq!(tight.threads, 1);
        assert!(tight.estimate < two);
        assert!(tight.reference_budget as u64 >= MIN_REFERENCE_BUDGET);
        assert_eq!(
            mlp.plan(one).unwrap().reference_budget as u64,
            MIN_REFERENCE_BUDGET
        );
    }

    #[test]
    fn below_one_thread_the_error_names_the_minimum() {
        let mlp = needs("ort", 420);
        let one = mlp.estimate(factors("ort").unwrap(), 1, MIN_REFERENCE_BUDGET);
        let message = mlp.plan(one - 1).unwrap_err().to_string();
        assert!(
            message.contains(&format!("about {}", human(one))),
            "{message}"
        );
        assert!(message.contains("on ort"), "{message}");
        let unmeasured = needs("openvino", 420)
            .plan(64 << 30)
            .unwrap_err()
            .to_string();
        assert!(unmeasured.contains("not measured"), "{unmeasured}");
    }
}
