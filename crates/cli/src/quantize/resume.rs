//! `aquant quantize --resume OUT_DIR`: what an accuracy-aware run keeps in `OUT_DIR/state` so that an interrupted
//! run can be continued with its original arguments (the journal replays its results).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where a run keeps what `--resume` needs, inside its output directory.
const STATE_DIR: &str = "state";
/// The command line of the run, to resume it with the same arguments.
const ARGS: &str = "args.json";

/// `quantize --resume OUT_DIR`: the original arguments of the run that wrote OUT_DIR, if that is what
/// `argv` (without the program name) asks for.
pub fn resume_request(argv: &[String]) -> Option<Result<Vec<String>>> {
    let rest: Vec<&str> = argv.iter().map(String::as_str).collect();
    let dir = match rest.as_slice() {
        ["quantize", "--resume", dir] => dir,
        ["quantize", flag] if flag.starts_with("--resume=") => &flag["--resume=".len()..],
        _ => return None,
    };
    let file = Path::new(dir).join(STATE_DIR).join(ARGS);
    Some(
        std::fs::read(&file)
            .with_context(|| {
                format!(
                    "'{dir}' holds no interrupted run to resume (no {})",
                    file.display()
                )
            })
            .and_then(|bytes| {
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("'{}' is unreadable", file.display()))
            }),
    )
}

/// Makes `OUT_DIR/state`: kept when resuming, started afresh (with this run's arguments) otherwise.
pub fn prepare_state(output: &Path, resumed: bool) -> Result<PathBuf> {
    let state = output.join(STATE_DIR);
    if !resumed {
        match std::fs::remove_dir_all(&state) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("clearing '{}'", state.display()))
            }
            _ => {}
        }
        std::fs::create_dir_all(&state)
            .with_context(|| format!("creating '{}'", state.display()))?;
        let argv: Vec<String> = std::env::args().skip(1).collect();
        aquant_onnx::write_atomic(&state.join(ARGS), &serde_json::to_vec(&argv)?)
            .with_context(|| format!("writing '{}'", state.join(ARGS).display()))?;
    }
    Ok(state)
}
