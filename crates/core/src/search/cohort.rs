//! Advancing several ranking candidates over the same samples together.
//!
//! Once the ranking knows one candidate's exact score, the others are evaluated only until their bound
//! falls below it — a few dozen samples each, the same first samples for all of them. Running them together
//! sample chunk by sample chunk pays off twice:
//!
//! - **Prefix caching.** Every candidate computes exactly what the base model computes upstream of its own
//!   group. The base model runs once per sample with those boundary values as extra outputs, and each
//!   candidate runs only its [`Suffix`]. The boundary values of one chunk of samples are all that is kept.
//!   Where the suffix may start depends on the engine ([`Cut`]): anywhere for simulated quantization in f32
//!   (tract's evaluation form); only at the 8-bit values a `QuantizeLinear` writes for ONNX Runtime, which
//!   fuses each quantized op with its quantizers and would compute a float value in between otherwise once
//!   it is an output. On MobileNetV2 the later groups' suffixes cost a quarter of the whole model or less.
//!   The base model's run is one more inference, cut after the last value a suffix reads ([`prefix`]): a
//!   cohort runs suffixes only where they save at least two whole runs together ([`MIN_COHORT_SAVING`]), a
//!   chunk is tapped only where the suffixes that will read it save more than one, and a member running alone
//!   runs its whole model — unless it is one of a best-first *front*, whose members take turns in the same
//!   chunks: those are tapped once and kept for the others ([`TAPPED_BYTES`]).
//! - **Both cores on independent work.** Candidates run in parallel, one sample at a time each, so each stops
//!   at exactly the sample where its bound fails, and preparing the candidates' sessions (single-threaded in
//!   the engines) is spread over the cores too. A member running alone runs a wave of samples, one per core.
//!
//! The values are those a separate evaluation of each candidate gives (tested bit for bit).

use std::collections::BTreeSet;
use std::sync::Arc;

use aquant_onnx::ModelProto;
use rayon::prelude::*;

use crate::backend::Session;
use crate::data::Annotation;
use crate::error::Result;
use crate::graph::{changed_suffix, prefix, Cut, Suffix};
use crate::progress::NoProgress;
use crate::runner::{run_batches, Flow, InputBinding};
use crate::search::engine_lab::EngineLab;
use crate::tensor::Tensor;

/// Samples whose boundary values are tapped at once.
const CHUNK: usize = 8;

/// The boundary values of tapped chunks kept for later calls, in bytes: a best-first ranking advances one
/// member at a time, a few samples each, and the members it alternates between sit in the same few chunks.
/// The least recently used chunk goes first, and before a chunk is tapped, room is made for one as large as
/// the largest kept, so a model whose chunk alone outgrows this never holds two.
const TAPPED_BYTES: usize = 64 << 20;

/// The least share of a candidate's nodes its suffix must leave out to be run at all: a suffix of nearly the
/// whole model saves little per sample, and where it runs alone it would be prepared again whole. Small: the
/// chunks are tapped for the cohort anyway, and an early group's suffix still saves its share on every sample
/// (MobileNetV2 on ONNX Runtime, 13 early groups ran whole at 0.25: ranking 4.5-4.7 -> 4.1-4.4 s).
const MIN_SUFFIX_SAVING: f64 = 0.05;

/// What a cohort's suffixes must save together (in whole models' runs per sample, by their shares of nodes)
/// for its members to run them: one run pays for the base model's, the other for preparing it and them. A
/// cohort of two large models (two members fit the memory budget) runs whole: on a deep MLP with 32 ranking
/// samples its suffixes cost more to prepare than they saved.
const MIN_COHORT_SAVING: f64 = 2.0;

/// One candidate of a cohort: its id (the caller's) and the ops it reverts.
pub(crate) struct Member {
    pub id: usize,
    pub reverted: BTreeSet<String>,
}

/// How a member's model runs.
enum Runner {
    /// Its suffix, on the base model's boundary values, once prepared: on first use, when the boundary
    /// tensors' shapes are known (the suffix model is dropped then: the session holds what it needs).
    Suffix {
        suffix: Option<Box<Suffix>>,
        /// Where each boundary value is among the tapped values.
        taps: Vec<usize>,
        session: Option<Arc<dyn Session>>,
        /// The part of the whole model's nodes it does not run: what it saves against running whole.
        saves: f64,
    },
    /// The whole model, on the dataset's samples: a member without a suffix, or one that ran on a chunk left
    /// untapped (from then on: one prepared model per member, whatever its samples).
    Whole(Whole),
}

/// A member's whole model, prepared.
struct Whole {
    session: Arc<dyn Session>,
    binding: InputBinding,
}

impl Whole {
    fn new(ctx: &EngineLab, model: &ModelProto) -> Result<Whole> {
        Ok(Whole {
            session: ctx.evaluator.prepare(model, &[])?,
            binding: InputBinding::from_model(model)?,
        })
    }

    /// Sample `index` of the dataset through the model: its outputs and the sample's annotation.
    fn run(&self, ctx: &EngineLab, index: usize) -> Result<(Vec<Tensor>, Annotation)> {
        let mut sample = ctx.evaluator.dataset().get(index)?;
        let annotation = std::mem::replace(&mut sample.annotation, Annotation::None);
        let inputs = self.binding.bind(sample, index)?;
        Ok((self.session.run(inputs)?, annotation))
    }
}

/// One candidate's evaluation in progress: its runner, the next position in the subset, its values so far.
struct CandidateRun {
    id: usize,
    /// The ops it reverts: to build its whole model when it first runs alone.
    reverted: BTreeSet<String>,
    runner: Runner,
    next: usize,
    values: Vec<f64>,
    stopped: bool,
}

/// Candidates prepared to be evaluated together, kept alive across the ranking's steps so that each is
/// built and prepared once.
pub(crate) struct Cohort {
    states: Vec<CandidateRun>,
    tap: Option<Tap>,
    /// Recently tapped chunks, least recently used first ([`TAPPED_BYTES`]): a best-first ranking advances a
    /// few members a few samples at a time, and each advance would otherwise run the base model over the
    /// chunk again.
    tapped: Vec<TappedChunk>,
}

/// A chunk's boundary values, kept between calls.
struct TappedChunk {
    from: usize,
    to: usize,
    samples: Vec<ChunkSample>,
    bytes: usize,
}

/// One sample of a chunk: its dataset index, annotation, and the base model's boundary values.
struct ChunkSample {
    index: usize,
    annotation: Annotation,
    taps: Vec<Tensor>,
}

impl Cohort {
    /// Builds and prepares `members`, candidates that each differ from the `base` state in a few ops.
    pub fn new(ctx: &EngineLab, base: &BTreeSet<String>, members: &[Member]) -> Result<Cohort> {
        // Each suffix saves less than a whole model's run: fewer members than that cannot save enough.
        let can_pay = members.len() as f64 > MIN_COHORT_SAVING;
        let base_model = match ctx.cut().filter(|_| ctx.levers.prefix_cache && can_pay) {
            Some(cut) => Some((ctx.build(base)?, cut)),
            None => None,
        };
        let mut states = prepare(ctx, base_model.as_ref(), members)?;
        let taps = tap_names(&mut states);
        let tap = match base_model {
            Some((model, _)) if !taps.is_empty() => {
                // Only what the boundary values depend on runs: nothing after the last of them.
                let model = prefix(model, &taps);
                Some(Tap {
                    binding: InputBinding::from_model(&model)?,
                    model_outputs: model.graph.as_ref().map_or(0, |g| g.output.len()),
                    base: Base::Built(Box::new(model)),
                    taps,
                })
            }
            _ => None,
        };
        Ok(Cohort {
            states,
            tap,
            tapped: Vec::new(),
        })
    }

    /// The members' ids.
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.states.iter().map(|s| s.id)
    }

    /// Evaluates the members for which `start(id)` gives a position, from there on `subset`, with metric
    /// number `metric`, in lockstep, each until `keep_going(id, new values)` answers false (a member running
    /// alone keeps the rest of its wave) or the subset ends. `front`: the members a best-first ranking is
    /// advancing one at a time, whose later calls will read the chunks this one taps. Returns each
    /// participant's id and new values.
    pub fn advance(
        &mut self,
        ctx: &EngineLab,
        subset: &[usize],
        metric: usize,
        start: impl Fn(usize) -> Option<usize>,
        front: &[usize],
        keep_going: &(dyn Fn(usize, &[f64]) -> bool + Sync),
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        let (participants, total) = self.enter(subset.len(), start);
        let evaluator = &ctx.evaluator;
        let progress = evaluator.progress();
        progress.start(&format!("ranking {participants} groups"), total);
        let mut inferred = 0;
        while let Some(next) = self.next_chunk_start(subset.len()) {
            evaluator.check_interrupt()?;
            let from = next - next % CHUNK;
            // The base model's run pays off when the suffixes that will read the chunk save more than a whole
            // model's run together; otherwise they run whole (the last candidate still above the best).
            let tap_it = self.suffix_savings_in(from, subset.len(), front) > 1.0;
            let chunk = self.chunk(ctx, subset, from, metric, tap_it)?;
            inferred += chunk.base_runs;
            inferred += self.run_members(ctx, &chunk, metric, keep_going)?;
            self.keep(chunk);
        }
        progress.finish();
        evaluator.count_inferred(inferred);
        Ok(self.take_values())
    }

    /// Sets every member up for an advance on a subset of `len` samples: those `start` gives a position in it
    /// take part from there, the others sit it out. Returns the participants and the samples left to them.
    fn enter(&mut self, len: usize, start: impl Fn(usize) -> Option<usize>) -> (usize, u64) {
        let mut participants = 0;
        let mut total = 0;
        for state in &mut self.states {
            state.values.clear();
            match start(state.id) {
                Some(position) if position < len => {
                    state.next = position;
                    state.stopped = false;
                    participants += 1;
                    total += (len - position) as u64;
                }
                _ => state.stopped = true,
            }
        }
        (participants, total)
    }

    /// What the suffixes of the members that will read the chunk from position `from` save together, in
    /// whole models' runs (each suffix's share of nodes not run: a proxy for its share of the time): those
    /// running that start before its end, and the members of the best-first `front` that stand in it (those
    /// behind it reach it only if they overtake the leader).
    fn suffix_savings_in(&self, from: usize, len: usize, front: &[usize]) -> f64 {
        let to = from + CHUNK;
        self.states
            .iter()
            .filter(|s| {
                let running = s.live(len) && s.next < to;
                let waiting = front.contains(&s.id) && (from..to).contains(&s.next);
                running || waiting
            })
            .map(|s| s.runner.saves())
            .sum()
    }

    /// Where the next chunk starts: the first position a member still running has not run, if any.
    fn next_chunk_start(&self, len: usize) -> Option<usize> {
        self.states
            .iter()
            .filter(|s| s.live(len))
            .map(|s| s.next)
            .min()
    }

    /// The chunk of `subset` from position `from` (a multiple of [`CHUNK`]): what every member running in it
    /// reads. Its boundary values are those kept from an earlier call, else the base model's run over it when
    /// `tap_it`, else none (the members run whole).
    fn chunk<'s>(
        &mut self,
        ctx: &EngineLab,
        subset: &'s [usize],
        from: usize,
        metric: usize,
        tap_it: bool,
    ) -> Result<Chunk<'s>> {
        let evaluator = &ctx.evaluator;
        let to = (from + CHUNK).min(subset.len());
        let indices = &subset[from..to];
        let references = match evaluator.metrics()[metric].needs_reference() {
            true => evaluator.references(indices)?,
            false => Vec::new(),
        };
        let kept = self
            .tapped
            .iter()
            .position(|c| (c.from, c.to) == (from, to));
        let (samples, base_runs) = match (kept, tap_it && self.tap.is_some()) {
            (Some(kept), _) => (self.tapped.remove(kept).samples, 0),
            (None, true) => {
                self.make_room();
                let tap = self.tap.as_mut().expect("checked above");
                (tap.run(ctx, indices)?, indices.len())
            }
            (None, false) => (Vec::new(), 0),
        };
        Ok(Chunk {
            subset,
            from,
            to,
            references,
            samples,
            base_runs,
        })
    }

    /// Runs the members with samples left in `chunk`, in parallel, each through its part of it. Returns the
    /// samples they ran. A member running alone (a best-first ranking advances one at a time) runs its samples
    /// on all cores instead.
    fn run_members(
        &mut self,
        ctx: &EngineLab,
        chunk: &Chunk,
        metric: usize,
        keep_going: &(dyn Fn(usize, &[f64]) -> bool + Sync),
    ) -> Result<usize> {
        let mut live: Vec<&mut CandidateRun> = self
            .states
            .iter_mut()
            .filter(|s| s.live(chunk.subset.len()) && s.next < chunk.to)
            .collect();
        let wave = match live.len() {
            1 => rayon::current_num_threads(),
            _ => 1,
        };
        // Longest first (least saved), each to the next free core: the chunk ends with short suffixes rather
        // than with a whole model's run on one core while the other waits (MobileNetV2: 3.25 -> 3.15 s of
        // members' runs).
        live.sort_by(|a, b| a.runner.saves().total_cmp(&b.runner.saves()));
        let runs: Vec<Result<usize>> = live
            .into_iter()
            .par_bridge()
            .map(|state| state.run_chunk(ctx, chunk, metric, keep_going, wave))
            .collect();
        let mut inferred = 0;
        for runs in runs {
            inferred += runs?;
        }
        Ok(inferred)
    }

    /// Keeps a tapped chunk for later calls, within [`TAPPED_BYTES`].
    fn keep(&mut self, chunk: Chunk) {
        if chunk.samples.is_empty() {
            return;
        }
        let bytes = chunk
            .samples
            .iter()
            .flat_map(|s| &s.taps)
            .map(Tensor::byte_len)
            .sum();
        self.tapped.push(TappedChunk {
            from: chunk.from,
            to: chunk.to,
            samples: chunk.samples,
            bytes,
        });
        while self.tapped.len() > 1 && self.tapped_bytes() > TAPPED_BYTES {
            self.tapped.remove(0);
        }
    }

    /// Drops the least recently used chunks until one as large as the largest kept fits beside the rest.
    fn make_room(&mut self) {
        let largest = self.tapped.iter().map(|c| c.bytes).max().unwrap_or(0);
        while !self.tapped.is_empty() && self.tapped_bytes() + largest > TAPPED_BYTES {
            self.tapped.remove(0);
        }
    }

    fn tapped_bytes(&self) -> usize {
        self.tapped.iter().map(|c| c.bytes).sum()
    }

    /// Each participant's id and new values, taken from it.
    fn take_values(&mut self) -> Vec<(usize, Vec<f64>)> {
        self.states
            .iter_mut()
            .filter(|s| !s.values.is_empty())
            .map(|s| (s.id, std::mem::take(&mut s.values)))
            .collect()
    }
}

impl CandidateRun {
    /// Whether it takes part and has samples of a subset of `len` left.
    fn live(&self, len: usize) -> bool {
        !self.stopped && self.next < len
    }

    /// Runs it from its next position to the end of `chunk`, `wave` samples at a time in parallel, stopping
    /// after the wave in which `keep_going` answers false. The rest of that wave is kept: each value is one
    /// more exact value of the candidate, computed on a core that would otherwise have waited. Returns the
    /// samples it ran.
    fn run_chunk(
        &mut self,
        ctx: &EngineLab,
        chunk: &Chunk,
        metric: usize,
        keep_going: &(dyn Fn(usize, &[f64]) -> bool + Sync),
        wave: usize,
    ) -> Result<usize> {
        let evaluator = &ctx.evaluator;
        let mut runs = 0;
        while !self.stopped && self.next < chunk.to {
            let sample = |position: usize| chunk.samples.get(position - chunk.from);
            // A suffix is prepared on its first sample (the boundary values give it its shapes).
            self.runner
                .prepare(ctx, sample(self.next), &self.reverted)?;
            let positions = self.next..(self.next + wave.max(1)).min(chunk.to);
            let runner = &self.runner;
            let outputs: Vec<Result<(Vec<Tensor>, Annotation)>> = positions
                .clone()
                .into_par_iter()
                .map(|p| runner.run(ctx, chunk.subset[p], sample(p)))
                .collect();
            for (position, result) in positions.zip(outputs) {
                let (outputs, annotation) = result?;
                let index = chunk.subset[position];
                let reference = chunk
                    .references
                    .get(position - chunk.from)
                    .map(|r| r.as_slice());
                self.values.push(evaluator.sample_value(
                    metric,
                    index,
                    &outputs,
                    &annotation,
                    reference,
                )?);
                self.next += 1;
                runs += 1;
                evaluator.progress().advance(1);
                self.stopped = self.stopped || !keep_going(self.id, &self.values);
            }
        }
        Ok(runs)
    }
}

/// Positions `from..to` of the subset, as the members read them.
struct Chunk<'s> {
    subset: &'s [usize],
    from: usize,
    to: usize,
    /// The FP32 model's outputs of each sample, when the metric compares with them.
    references: Vec<Arc<Vec<Tensor>>>,
    /// Each sample's boundary values, when the base model is tapped.
    samples: Vec<ChunkSample>,
    /// Samples the base model ran to tap them.
    base_runs: usize,
}

/// Builds every member's model and prepares what can be prepared, on all cores. Members run suffixes only
/// where the base model's runs can pay off: when their suffixes together save [`MIN_COHORT_SAVING`].
fn prepare(
    ctx: &EngineLab,
    base_model: Option<&(ModelProto, Cut)>,
    members: &[Member],
) -> Result<Vec<CandidateRun>> {
    let firsts: Vec<FirstLook> = members
        .par_iter()
        .map(|member| {
            let model = ctx.build(&member.reverted)?;
            match base_model.and_then(|(base, cut)| worthwhile_suffix(base, &model, *cut)) {
                Some((saves, suffix)) => Ok(FirstLook::Suffix(saves, Box::new(suffix))),
                None => Ok(FirstLook::Whole(Whole::new(ctx, &model)?)),
            }
        })
        .collect::<Result<_>>()?;
    let savings: f64 = firsts
        .iter()
        .map(|first| match first {
            FirstLook::Suffix(saves, _) => *saves,
            FirstLook::Whole(_) => 0.0,
        })
        .sum();
    members
        .par_iter()
        .zip(firsts)
        .map(|(member, first)| {
            let runner = match first {
                FirstLook::Whole(whole) => Runner::Whole(whole),
                FirstLook::Suffix(saves, suffix) if savings >= MIN_COHORT_SAVING => {
                    Runner::Suffix {
                        suffix: Some(suffix),
                        taps: Vec::new(),
                        session: None,
                        saves,
                    }
                }
                // Built again rather than kept: a cohort's models would otherwise all be held at once.
                FirstLook::Suffix(..) => {
                    Runner::Whole(Whole::new(ctx, &ctx.build(&member.reverted)?)?)
                }
            };
            Ok(CandidateRun {
                id: member.id,
                reverted: member.reverted.clone(),
                runner,
                next: 0,
                values: Vec::new(),
                stopped: false,
            })
        })
        .collect()
}

/// A member once built: whole (prepared), or with a suffix worth running (what it saves, the suffix) if the
/// cohort's suffixes together are.
enum FirstLook {
    Whole(Whole),
    Suffix(f64, Box<Suffix>),
}

/// The suffix of `candidate` after `base`, with the share of the candidate's nodes it leaves out, when that
/// share is at least [`MIN_SUFFIX_SAVING`].
fn worthwhile_suffix(base: &ModelProto, candidate: &ModelProto, cut: Cut) -> Option<(f64, Suffix)> {
    let total = candidate.graph.as_ref()?.node.len().max(1);
    let suffix = changed_suffix(base, candidate, cut)?;
    let saves = 1.0 - suffix.nodes as f64 / total as f64;
    (saves >= MIN_SUFFIX_SAVING).then_some((saves, suffix))
}

/// The union of the suffixes' boundary values, in a fixed order; tells each suffix where its inputs are.
fn tap_names(states: &mut [CandidateRun]) -> Vec<String> {
    let names: Vec<String> = states
        .iter()
        .flat_map(|s| match &s.runner {
            Runner::Suffix {
                suffix: Some(suffix),
                ..
            } => suffix.boundary.clone(),
            _ => Vec::new(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for state in states {
        if let Runner::Suffix {
            suffix: Some(suffix),
            taps,
            ..
        } = &mut state.runner
        {
            *taps = suffix
                .boundary
                .iter()
                .map(|b| {
                    names
                        .binary_search(b)
                        .expect("every boundary value is tapped")
                })
                .collect();
        }
    }
    names
}

/// The base model, to output the boundary values too: prepared when a chunk is first tapped (a cohort whose
/// suffixes never run two at a time never prepares it).
struct Tap {
    base: Base,
    taps: Vec<String>,
    binding: InputBinding,
    model_outputs: usize,
}

/// The base model, before and after it is prepared.
enum Base {
    Built(Box<ModelProto>),
    Prepared(Arc<dyn Session>),
}

impl Tap {
    /// Runs the base model over a chunk of samples, keeping the boundary values every suffix reads.
    fn run(&mut self, ctx: &EngineLab, indices: &[usize]) -> Result<Vec<ChunkSample>> {
        let session = match &self.base {
            Base::Prepared(session) => session.clone(),
            Base::Built(model) => {
                let session = ctx.evaluator.prepare(model, &self.taps)?;
                self.base = Base::Prepared(session.clone());
                session
            }
        };
        let mut chunk = Vec::with_capacity(indices.len());
        run_batches(
            session.as_ref(),
            &self.binding,
            ctx.evaluator.dataset(),
            indices,
            1,
            &NoProgress,
            // Batches of one sample: the outputs are that sample's values whatever their shape.
            |batch, outputs, annotations| {
                for (&index, annotation) in batch.iter().zip(annotations) {
                    chunk.push(ChunkSample {
                        index,
                        annotation,
                        taps: outputs[self.model_outputs..].to_vec(),
                    });
                }
                Ok(Flow::Continue)
            },
        )?;
        Ok(chunk)
    }
}

impl Runner {
    /// The share of a whole model's run (by nodes) each of its samples saves: none for a whole model.
    fn saves(&self) -> f64 {
        match self {
            Runner::Suffix { saves, .. } => *saves,
            Runner::Whole(_) => 0.0,
        }
    }

    /// Prepares what runs `sample`, once: a suffix's session for its boundary values, or without them (a
    /// chunk left untapped) the whole candidate `reverted`, which replaces the suffix.
    fn prepare(
        &mut self,
        ctx: &EngineLab,
        sample: Option<&ChunkSample>,
        reverted: &BTreeSet<String>,
    ) -> Result<()> {
        let Runner::Suffix {
            suffix,
            taps,
            session,
            ..
        } = self
        else {
            return Ok(());
        };
        match sample {
            Some(sample) if session.is_none() => {
                let suffix = suffix
                    .take()
                    .expect("a suffix member has its suffix or its session");
                let inputs: Vec<Tensor> = taps.iter().map(|&t| sample.taps[t].clone()).collect();
                *session = Some(ctx.evaluator.prepare(&suffix.model_for(&inputs)?, &[])?);
            }
            Some(_) => {}
            None => *self = Runner::Whole(Whole::new(ctx, &ctx.build(reverted)?)?),
        }
        Ok(())
    }

    /// One sample through the (prepared) model: its outputs and the sample's annotation.
    fn run(
        &self,
        ctx: &EngineLab,
        index: usize,
        sample: Option<&ChunkSample>,
    ) -> Result<(Vec<Tensor>, Annotation)> {
        match self {
            Runner::Suffix { taps, session, .. } => {
                let sample = sample.expect("a suffix runs on tapped chunks");
                debug_assert_eq!(sample.index, index);
                let inputs: Vec<Tensor> = taps.iter().map(|&t| sample.taps[t].clone()).collect();
                let session = session.as_ref().expect("prepared before it runs");
                Ok((session.run(inputs)?, sample.annotation.clone()))
            }
            Runner::Whole(whole) => whole.run(ctx, index),
        }
    }
}
