//! Ctrl-C: the first one asks the run to stop at its next safe point (it then saves the best model so far
//! and its report); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The flag the library polls.
pub fn flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// Installs the handler (once; later calls do nothing).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting now");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping at the next safe point (Ctrl-C again to exit at once)");
    });
}
