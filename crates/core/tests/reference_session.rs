//! The FP32 model's session lives only while FP32 outputs are missing from the evaluator's cache (issue #27):
//! an engine holds a copy of the model's weights for it, which a search whose every reference output is
//! cached would otherwise keep to the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aquant::builder::ModelBuilder;
use aquant::{
    Annotation, Backend, Dataset, EngineSettings, Evaluator, NoProgress, Result, Sample, Session,
    Tensor,
};
use aquant_onnx::ModelProto;
use ndarray::{ArrayD, IxDyn};

/// An engine whose sessions return their input, counting the sessions alive.
#[derive(Default)]
struct Echo {
    alive: Arc<AtomicUsize>,
    prepared: AtomicUsize,
}

struct EchoSession(Arc<AtomicUsize>);

impl Drop for EchoSession {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Session for EchoSession {
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Ok(inputs)
    }
}

impl Backend for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn version(&self) -> String {
        "0".into()
    }

    fn prepare(&self, _model: &ModelProto, _extra: &[String]) -> Result<Arc<dyn Session>> {
        self.alive.fetch_add(1, Ordering::SeqCst);
        self.prepared.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(EchoSession(self.alive.clone())))
    }

    fn settings(&self) -> EngineSettings {
        EngineSettings {
            threads: Some(1),
            precision_hint: None,
            optimization: None,
        }
    }
}

/// `len` samples of one value each.
struct Values(usize);

impl Dataset for Values {
    fn len(&self) -> usize {
        self.0
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![index as f32, 1.0]).unwrap();
        Ok(Sample {
            inputs: vec![("x".into(), Tensor::from(x))],
            annotation: Annotation::Label(0),
            metadata: Default::default(),
        })
    }
}

#[test]
fn the_fp32_session_is_released_once_every_reference_output_is_cached() {
    let model = ModelBuilder::new(13)
        .input("x", &[Some(1), Some(2)])
        .node("Identity", "identity", &["x"], &["y"])
        .output("y", &[Some(1), Some(2)])
        .build();
    let backend = Echo::default();
    let data = Values(6);
    let agreement = aquant::metric::builtin("agreement").unwrap();
    let evaluator = Evaluator::new(
        &backend,
        &data,
        vec![agreement.as_ref()],
        Some(&model),
        1,
        &NoProgress,
    )
    .unwrap();

    // Half the samples: the FP32 session stays for the other half.
    evaluator
        .evaluate(&model, &[0, 1, 2], "first half")
        .unwrap();
    assert_eq!(backend.alive.load(Ordering::SeqCst), 1, "the FP32 session");
    // The rest: every output is cached, the FP32 session goes.
    let all = evaluator.all_indices();
    let value = evaluator.evaluate(&model, &all, "all").unwrap().value();
    assert_eq!(value, 1.0);
    assert_eq!(backend.alive.load(Ordering::SeqCst), 0);
    // Later evaluations read the cache: no FP32 session is prepared again.
    let prepared = backend.prepared.load(Ordering::SeqCst);
    evaluator.evaluate(&model, &all, "again").unwrap();
    assert_eq!(
        backend.prepared.load(Ordering::SeqCst),
        prepared + 1,
        "the evaluated model only"
    );
    assert_eq!(backend.alive.load(Ordering::SeqCst), 0);
}
