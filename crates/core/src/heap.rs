//! Giving the allocator's free pages back to the OS between the phases of a run.
//!
//! glibc's malloc gives each thread that allocates under contention an arena of its own and keeps the pages a
//! freed chunk spans inside its arena. The search prepares candidates' sessions on rayon's workers (ONNX
//! Runtime's packed weights included, in chunks of tens of KB); once they are dropped, those pages stay
//! resident in the workers' arenas, and the next phase's allocations on other threads take new ones. On a 420
//! MB MLP of 100 layers the resident set after the search stayed ~450 MB above the heap in use, and the
//! deployed check (FP32 and the saved model prepared side by side) peaked at 3.6× the model instead of 2.7×
//! (bench/RESULTS.md). One arena for the whole process ends it too, but costs ~10% of MobileNetV2's run in lock
//! contention; returning the free pages at the few points where a phase has dropped its sessions costs
//! milliseconds.

/// Returns the free pages of every malloc arena to the OS (glibc's `malloc_trim`); elsewhere it does nothing.
/// Call it where a phase has just dropped engine sessions or candidate models, before the next allocates.
pub(crate) fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the arenas under their locks and madvises free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
