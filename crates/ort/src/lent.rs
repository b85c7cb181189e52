//! Initializers ONNX Runtime reads from aquant's own buffers instead of from the encoded model, and sessions
//! that share their pre-packed weights.
//!
//! Encoding a model copies every weight into the encoded bytes, ONNX Runtime copies them again while it
//! parses, and a prepared model kept its bytes to open one session per thread: a prepared model cost about
//! three times its weights, twice more per thread (issue #27). Here the large initializers leave the encoded
//! model: each is marked as external data, and the session builder gets an `OrtValue` over the buffer aquant
//! already holds (for a memory-mapped input, a slice of the mapping), one of two ways:
//! - **shared** (`AddInitializer`), with a pre-packed weights container per prepared model: ONNX Runtime
//!   reads the tensor in place, and the weights its kernels pre-pack are cached in the container, so the
//!   sessions of the threads that run one model at once share one packed copy. (A container for the whole
//!   run would share the FP32 weights between candidates too, but it keeps every packed weight until it is
//!   dropped, and the variants a run goes through — int8, fake-quantized analyses' — would add up to several
//!   models.) ONNX Runtime checks that the external-data file a shared initializer names exists, so an empty
//!   one is made for it ([`Sharing`]);
//! - **external** (`AddExternalInitializers`): ONNX Runtime puts the values in place of the external data
//!   before it optimizes the graph and copies each into its session once (freeing the copy of what it
//!   pre-packs). This is the fallback when ONNX Runtime refuses a model with shared initializers: a graph
//!   optimization that reads a weight's data (folding a transpose, say) reads it from the graph, where a
//!   shared initializer has none.

use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use aquant::{Error, Result};
use aquant_onnx::proto::tensor_proto::{DataLocation, DataType};
use aquant_onnx::proto::StringStringEntryProto;
use aquant_onnx::{Bytes, ModelProto, TensorProto};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::{PrepackedWeights, SessionBuilder};
use ort::value::{DynValue, TensorElementType, Value};
use ort::AsPointer;

use crate::backend_error;

/// Below this size an initializer stays in the encoded model: lending one costs a value and a name, and small
/// tensors (scales, zero points, shapes) are what ONNX Runtime's graph transformers read while they optimize.
const LENT_MIN_BYTES: usize = 64 * 1024;

/// The external-data location lent initializers name. No file of that name is read: ONNX Runtime takes the
/// lent values in its place (an empty one exists for shared initializers, [`Sharing`]).
const LENT_LOCATION: &str = "aquant-lent-initializer";

/// The session option naming the folder external data is read from when a model comes from memory.
const FOLDER_KEY: &str = "session.model_external_initializers_file_folder_path";

/// What the sessions of one backend need to share initializers: the folder holding the empty file lent
/// initializers name, and whether ONNX Runtime took shared initializers so far.
pub(crate) struct Sharing {
    folder: tempfile::TempDir,
    /// Not yet known, yes, or no (then every session of the backend takes external initializers, without
    /// trying again).
    verdict: AtomicU8,
}

const UNKNOWN: u8 = 0;
const SHARED: u8 = 1;
const REFUSED: u8 = 2;

impl Sharing {
    /// The placeholder file; `None` when it cannot be made (sessions then take external initializers).
    pub(crate) fn new() -> Option<Sharing> {
        let folder = tempfile::Builder::new()
            .prefix("aquant-ort-")
            .tempdir()
            .ok()?;
        std::fs::File::create(folder.path().join(LENT_LOCATION)).ok()?;
        Some(Sharing {
            folder,
            verdict: AtomicU8::new(UNKNOWN),
        })
    }

    /// Whether to try sharing (not refused yet).
    pub(crate) fn worth_trying(&self) -> bool {
        self.verdict.load(Ordering::Relaxed) != REFUSED
    }

    /// Records whether a session with shared initializers was created.
    pub(crate) fn record(&self, shared: bool) {
        let verdict = if shared { SHARED } else { REFUSED };
        let _ =
            self.verdict
                .compare_exchange(UNKNOWN, verdict, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Whether sessions share initializers (the test reads it).
    #[cfg(test)]
    pub(crate) fn shares(&self) -> bool {
        self.verdict.load(Ordering::Relaxed) == SHARED
    }
}

/// The initializers taken out of a model, as values over their buffers, for every session made from it.
pub(crate) struct LentInitializers {
    values: Vec<(String, Arc<DynValue>)>,
    /// The packed weights the sessions share when they share the initializers.
    prepacked: PrepackedWeights,
    /// The buffers the values point into: they live as long as the prepared model, whose sessions may read
    /// them until they are dropped (the prepared model drops its sessions first).
    _buffers: Vec<Bytes>,
}

impl LentInitializers {
    /// Takes the large initializers of `model`'s main graph out of it: their data becomes external data named
    /// [`LENT_LOCATION`], and the returned values carry it. Initializers ONNX Runtime could not read in place
    /// (type-specific fields rather than `raw_data`, a buffer not aligned to its element, an element type it
    /// has no tensor for) stay in the model.
    pub(crate) fn take(model: &mut ModelProto) -> Result<LentInitializers> {
        let mut lent = LentInitializers {
            values: Vec::new(),
            prepacked: PrepackedWeights::new(),
            _buffers: Vec::new(),
        };
        let Some(graph) = model.graph.as_mut() else {
            return Ok(lent);
        };
        for tensor in &mut graph.initializer {
            let Some((data, element)) = lendable(tensor) else {
                continue;
            };
            let value = borrowed_value(&data, &tensor.dims, element)?;
            mark_external(tensor, data.len());
            let name = tensor.name.clone().unwrap_or_default();
            lent.values.push((name, Arc::new(value)));
            lent._buffers.push(data);
        }
        Ok(lent)
    }

    /// `builder` with every lent initializer given to it: shared (with this model's container) when `sharing`
    /// is given, else as external initializers.
    pub(crate) fn lend_to(
        &self,
        mut builder: SessionBuilder,
        sharing: Option<&Sharing>,
    ) -> Result<SessionBuilder> {
        let fail = |e: ort::Error<_>| backend_error("lending an initializer", e);
        if let Some(sharing) = sharing {
            builder = builder
                .with_prepacked_weights(&self.prepacked)
                .map_err(fail)?
                .with_config_entry(FOLDER_KEY, sharing.folder.path().to_string_lossy())
                .map_err(fail)?;
        }
        for (name, value) in &self.values {
            let value = Arc::clone(value);
            builder = match sharing {
                Some(_) => builder.with_initializer(name, value),
                None => builder.with_external_initializer(name, value),
            }
            .map_err(fail)?;
        }
        Ok(builder)
    }

    /// Whether any initializer is lent.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many initializers are lent (the test reads it).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// `tensor`'s buffer and element type when it can be lent.
fn lendable(tensor: &TensorProto) -> Option<(Bytes, TensorElementType)> {
    let data = tensor.raw_data.as_ref()?;
    if data.len() < LENT_MIN_BYTES || tensor.data_location == Some(DataLocation::External as i32) {
        return None;
    }
    let (element, size) = element_type(tensor.data_type?)?;
    let count: i64 = tensor.dims.iter().product();
    let aligned = (data.as_ptr() as usize).is_multiple_of(size);
    (aligned && usize::try_from(count).ok()? * size == data.len()).then(|| (data.clone(), element))
}

/// ONNX Runtime's element type and its size for an ONNX data type, for the types weights come in.
fn element_type(data_type: i32) -> Option<(TensorElementType, usize)> {
    Some(match DataType::try_from(data_type).ok()? {
        DataType::Float => (TensorElementType::Float32, 4),
        DataType::Double => (TensorElementType::Float64, 8),
        DataType::Float16 => (TensorElementType::Float16, 2),
        DataType::Bfloat16 => (TensorElementType::Bfloat16, 2),
        DataType::Int8 => (TensorElementType::Int8, 1),
        DataType::Uint8 => (TensorElementType::Uint8, 1),
        DataType::Int16 => (TensorElementType::Int16, 2),
        DataType::Uint16 => (TensorElementType::Uint16, 2),
        DataType::Int32 => (TensorElementType::Int32, 4),
        DataType::Uint32 => (TensorElementType::Uint32, 4),
        DataType::Int64 => (TensorElementType::Int64, 8),
        DataType::Uint64 => (TensorElementType::Uint64, 8),
        _ => return None,
    })
}

/// Leaves `tensor`'s shape and type, and points its data at [`LENT_LOCATION`].
fn mark_external(tensor: &mut TensorProto, length: usize) {
    let entry = |key: &str, value: String| StringStringEntryProto {
        key: Some(key.into()),
        value: Some(value),
    };
    tensor.raw_data = None;
    tensor.data_location = Some(DataLocation::External as i32);
    tensor.external_data = vec![
        entry("location", LENT_LOCATION.into()),
        entry("offset", "0".into()),
        entry("length", length.to_string()),
    ];
}

/// An `OrtValue` over `data`, which it does not own.
fn borrowed_value(data: &Bytes, shape: &[i64], element: TensorElementType) -> Result<DynValue> {
    let context = "lending an initializer";
    let info = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Device,
        MemoryType::Default,
    )
    .map_err(|e| backend_error(context, e))?;
    let mut value = ptr::null_mut();
    // SAFETY: `data` is `len` readable bytes holding `shape`'s element count of `element` (checked by
    // `lendable`), aligned to the element; ONNX Runtime reads initializers and never writes them, and the
    // buffer outlives the value and every session given it (`LentInitializers` keeps it).
    let status = unsafe {
        (ort::api().CreateTensorWithDataAsOrtValue)(
            info.ptr(),
            data.as_ptr() as *mut c_void,
            data.len(),
            shape.as_ptr(),
            shape.len(),
            element.into(),
            &mut value,
        )
    };
    // SAFETY: the status comes from the call above.
    unsafe { ort::Error::result_from_status(status) }.map_err(|e| backend_error(context, e))?;
    let value = NonNull::new(value).ok_or_else(|| Error::Backend {
        backend: "ort".into(),
        message: "ONNX Runtime returned no value for a lent initializer".into(),
    })?;
    // SAFETY: `value` is the tensor just created; `Value` releases it on drop, never the buffer it points to.
    Ok(unsafe { Value::from_ptr(value, Some(&Allocator::default())) })
}

#[cfg(test)]
mod tests {
    use aquant::builder::ModelBuilder;
    use aquant::{Backend, Tensor};
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::OrtBackend;

    const ROWS: usize = 128;
    const COLS: usize = 256;

    /// `x [1, 128] → MatMul(w [128, 256]) → y`, `w` 128 KiB (lent), its buffer shifted by `shift` bytes; with
    /// `transposed`, `w` is stored as [256, 128] behind a Transpose, which ONNX Runtime folds while it
    /// optimizes (reading the weight's data).
    fn matmul(weights: &[f32], shift: usize, transposed: bool) -> ModelProto {
        let builder = ModelBuilder::new(13).input("x", &[Some(1), Some(ROWS)]);
        let builder = match transposed {
            false => builder.initializer("w", &[ROWS, COLS], weights),
            true => {
                let stored: Vec<f32> = (0..COLS * ROWS)
                    .map(|i| weights[(i % ROWS) * COLS + i / ROWS])
                    .collect();
                builder.initializer("w_t", &[COLS, ROWS], &stored).node(
                    "Transpose",
                    "transpose",
                    &["w_t"],
                    &["w"],
                )
            }
        };
        let mut model = builder
            .node("MatMul", "matmul", &["x", "w"], &["y"])
            .output("y", &[Some(1), Some(COLS)])
            .build();
        let tensor = &mut model.graph.as_mut().unwrap().initializer[0];
        let bytes = tensor.raw_data.take().unwrap();
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&bytes);
        tensor.raw_data = Some(Bytes::from(shifted).slice(shift..));
        model
    }

    /// Runs `model` on `x` from two threads at once (two sessions of one prepared model), checking `expected`.
    fn assert_runs(
        backend: &OrtBackend,
        model: &ModelProto,
        x: &[f32],
        expected: &[f32],
        case: &str,
    ) {
        let session = backend.prepare(model, &[]).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    let input = ArrayD::from_shape_vec(IxDyn(&[1, ROWS]), x.to_vec()).unwrap();
                    let got = session.run(vec![Tensor::from(input)]).unwrap().remove(0);
                    for (a, b) in got.as_f32("y").unwrap().iter().zip(expected) {
                        assert!(
                            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                            "{case}: {a} vs {b}"
                        );
                    }
                });
            }
        });
    }

    #[test]
    fn large_aligned_initializers_leave_the_encoded_model_and_run_the_same() {
        let weights: Vec<f32> = (0..ROWS * COLS)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let x: Vec<f32> = (0..ROWS).map(|i| (i as f32 / ROWS as f32) - 0.5).collect();
        let expected: Vec<f32> = (0..COLS)
            .map(|c| (0..ROWS).map(|r| x[r] * weights[r * COLS + c]).sum())
            .collect();
        let backend = OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
        for (shift, lent_count) in [(0, 1), (1, 0)] {
            let model = matmul(&weights, shift, false);
            let mut taken = model.clone();
            let lent = LentInitializers::take(&mut taken).unwrap();
            assert_eq!(lent.len(), lent_count, "shift {shift}");
            let encoded = aquant_onnx::encode_model(&taken).len();
            assert_eq!(
                encoded < 4096,
                lent_count == 1,
                "shift {shift}: {encoded} bytes encoded"
            );
            assert_runs(&backend, &model, &x, &expected, &format!("shift {shift}"));
        }
        // The sessions shared the lent weight (a shared initializer, one packed copy for both threads).
        assert!(backend.sharing.as_deref().unwrap().shares());
        // A weight ONNX Runtime reads while it optimizes gives the same result, shared or not.
        let fresh = OrtBackend::new().unwrap();
        assert_runs(
            &fresh,
            &matmul(&weights, 0, true),
            &x,
            &expected,
            "transposed",
        );
        let refused = !fresh.sharing.as_deref().unwrap().shares();
        assert!(
            refused,
            "this case tests the fallback: ONNX Runtime must read the transposed weight to fold it"
        );
    }

    /// Skipping pre-packing ([`Backend::prepare_for_few_runs`]) changes how a kernel reads its weight, not what
    /// it computes: float sums run in another order, so the outputs differ in their last bits (here at most
    /// 1.7e-6 relative over 128 products), shared initializers or not.
    #[test]
    fn sessions_for_few_runs_compute_the_same_values_to_float_rounding() {
        let weights: Vec<f32> = (0..ROWS * COLS)
            .map(|i| ((i * 104729) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let x: Vec<f32> = (0..ROWS)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let backend = OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
        for transposed in [false, true] {
            let model = matmul(&weights, 0, transposed);
            let run = |session: Arc<dyn aquant::Session>| {
                let input = ArrayD::from_shape_vec(IxDyn(&[1, ROWS]), x.clone()).unwrap();
                let y = session.run(vec![Tensor::from(input)]).unwrap().remove(0);
                y.as_f32("y").unwrap().iter().copied().collect::<Vec<f32>>()
            };
            let packed = run(backend.prepare(&model, &[]).unwrap());
            let unpacked = run(backend.prepare_for_few_runs(&model, &[]).unwrap());
            for (a, b) in packed.iter().zip(&unpacked) {
                assert!(
                    (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                    "transposed {transposed}: {a} packed, {b} not"
                );
            }
        }
    }
}
