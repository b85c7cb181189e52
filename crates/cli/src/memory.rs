//! The allocator's side of aquant's memory bound.
//!
//! A run allocates and frees weight-sized buffers stage after stage: each candidate's model, the engine's copy
//! of it, its packed weights. glibc's malloc serves a freed buffer of up to 32 MiB from its heaps afterwards
//! (its mmap threshold rises to the largest buffer freed), and heaps rarely shrink: on a 420 MB model the
//! resident set stayed about 1 GB above what was in use (measured: peak RSS 3.34 GB, 2.30 GB with the threshold
//! fixed, bench/RESULTS.md). Fixing the threshold at 1 MiB maps every larger buffer on its own, so freeing it
//! returns it to the OS at once; smaller allocations (per-sample tensors, graph structure) are unaffected.
//!
//! Fixing it also fixes the trim threshold at its 128 KiB default (glibc stops adapting both), so the heaps of
//! the engine's and rayon's threads were trimmed and regrown sample after sample: every trim a TLB shootdown
//! across the cores, every regrowth page faults. On EfficientNet-Lite0's calibration (300 samples, 2 cores,
//! Xeon with AMX) that was 20 s of system time in a 27 s run. Keeping 64 MiB at the top of a heap when it is
//! trimmed (`M_TOP_PAD`) ends the churn: 15 s, 0.4 s of system time, peak RSS 34 MB higher.

/// Buffers of at least this many bytes are mapped on their own (ONNX Runtime's alignment threshold too).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Bytes a heap keeps at its top when trimmed, and takes beyond a request when it grows.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_PAD: libc::c_int = 64 << 20;

/// Fixes glibc's mmap threshold and the pad its heaps keep (module doc); elsewhere the allocator is left as
/// it is.
pub fn return_large_frees_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets tuning parameters, called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
}
