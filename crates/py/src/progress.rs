//! Progress on stderr for Python users: one line per task that took a while, and a line every few seconds
//! during long ones. Plain lines, not a bar: notebooks and logs show them as they are.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tasks shorter than this are not reported (ranking runs many small evaluations).
const QUIET_BELOW: Duration = Duration::from_secs(2);
/// Interval between lines of a running task.
const EVERY: Duration = Duration::from_secs(10);

struct Task {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    said: Instant,
}

/// [`aquant::Progress`] as lines on stderr.
#[derive(Default)]
pub struct Lines(Mutex<Option<Task>>);

impl aquant::Progress for Lines {
    fn start(&self, label: &str, total: u64) {
        let now = Instant::now();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Task {
            label: label.to_owned(),
            total,
            done: 0,
            started: now,
            said: now,
        });
    }

    fn advance(&self, units: u64) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = slot.as_mut() {
            task.done += units;
            if task.said.elapsed() >= EVERY {
                task.said = Instant::now();
                say(task, "…");
            }
        }
    }

    fn finish(&self) {
        if let Some(task) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if task.started.elapsed() >= QUIET_BELOW {
                say(&task, "");
            }
        }
    }
}

fn say(task: &Task, suffix: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "aquant: {} {}/{} in {:.1} s{suffix}",
        task.label,
        task.done,
        task.total,
        task.started.elapsed().as_secs_f64()
    );
}
