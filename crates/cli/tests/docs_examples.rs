//! The documents' examples are tests: every ```console block of README.md and docs/guide.md runs with the
//! built `aquant` (trycmd reads the blocks: `$ aquant …` lines, the expected output under them with `[..]` and
//! `...` for what depends on the machine, `? 2` for an expected exit status). A block that cannot run here (the
//! two-minute MobileNetV2 quick start) is written ```console,ignore beside its reason.
//!
//! The commands name the bundled assets by their path from the repository root, as a user on a clone types them;
//! they run in a scratch directory holding links to `assets/` and `examples/`, so that their `-o out/…`
//! outputs never land in the repository.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch directory that looks like the repository root to the documents' commands.
fn scratch_root() -> tempfile::TempDir {
    let scratch = tempfile::tempdir().unwrap();
    for linked in ["assets", "examples"] {
        let target = repo_root().join(linked).canonicalize().unwrap();
        std::os::unix::fs::symlink(target, scratch.path().join(linked)).unwrap();
    }
    scratch
}

#[test]
fn readme_and_guide_examples_run() {
    let scratch = scratch_root();
    let root = repo_root().canonicalize().unwrap();
    // trycmd runs a Markdown case in the test's working directory (it has no `.in` directory to copy).
    std::env::set_current_dir(scratch.path()).unwrap();
    trycmd::TestCases::new()
        .register_bin("aquant", PathBuf::from(env!("CARGO_BIN_EXE_aquant")))
        .case(root.join("README.md"))
        .case(root.join("docs/guide.md"))
        .run();
}

/// The test command of the README is the one CI runs (`.ci/run`, which adds `--quiet` to pip): each of its
/// steps is there, so that the README and CI cannot drift apart.
#[test]
fn readme_test_command_is_what_ci_runs() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    let command = readme
        .lines()
        .find(|line| line.contains("cargo test --release --workspace"))
        .expect("README.md has no test command");
    for step in command.split(" && ") {
        let step = step.trim();
        let found = match step.strip_prefix("python3 -m pip install -r ") {
            // CI installs each requirements file on its own line.
            Some(files) => files.split(" -r ").all(|file| {
                ci.lines()
                    .any(|l| l.contains("pip install") && l.contains(file))
            }),
            None => ci.lines().any(|line| line.trim() == step) || ci_runs_quietly(&ci, step),
        };
        assert!(found, "README's test step `{step}` is not in .ci/run");
    }
}

/// `step` as .ci/run writes it: the same pip install with `--quiet --disable-pip-version-check`.
fn ci_runs_quietly(ci: &str, step: &str) -> bool {
    let quiet = step.replace(
        "pip install ",
        "pip install --quiet --disable-pip-version-check ",
    );
    ci.lines().any(|line| line.trim() == quiet)
}
