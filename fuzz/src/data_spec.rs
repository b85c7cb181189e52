//! `data_spec`: bytes → data-spec JSON and an `.npy`/`.npz` file → dataset → samples.
//!
//! An input is `<spec JSON> NUL <array bytes>` (JSON text never holds a raw NUL, so the split is unambiguous;
//! without a NUL the whole input is the spec). The array bytes are written as `fuzz.npy` and `fuzz.npz` into a
//! fixture folder that also holds valid arrays, a label list and a tiny image; the spec is opened there and its
//! first samples are read. Specs naming anything outside the fixture folder are skipped: a fuzzer must not read
//! `/dev/stdin` or the rest of the machine.

use aquant::{DataSpec, Dataset};

use crate::fixture;

/// Samples read from each opened dataset (more only repeats the same code on other rows).
const SAMPLES_READ: usize = 4;

/// Runs one fuzz input through the data-spec parser, the `.npy`/`.npz` readers and the dataset.
pub fn data_spec(bytes: &[u8]) {
    let (spec_text, array) = match bytes.iter().position(|&b| b == 0) {
        Some(nul) => (&bytes[..nul], &bytes[nul + 1..]),
        None => (bytes, &[][..]),
    };
    let Ok(spec) = serde_json::from_slice::<DataSpec>(spec_text) else {
        return;
    };
    if !stays_in_fixture(&spec) {
        return;
    }
    let _guard = fixture::lock();
    for name in ["fuzz.npy", "fuzz.npz"] {
        fixture::write(name, array);
    }
    let Ok(dataset) = spec.open(fixture::dir()) else {
        return;
    };
    read_samples(dataset.as_ref());
}

fn read_samples(dataset: &dyn Dataset) {
    assert!(!dataset.is_empty(), "open() refuses empty datasets");
    for index in 0..dataset.len().min(SAMPLES_READ) {
        let _ = dataset.get(index);
    }
    assert!(
        dataset.get(dataset.len()).is_err(),
        "a sample past the end is an error"
    );
}

/// True when every path the spec names is a plain file name inside the fixture folder (or its `img` folder).
fn stays_in_fixture(spec: &DataSpec) -> bool {
    let plain = |path: &str| {
        let file = path
            .rsplit_once(".npz:")
            .map_or(path, |(archive, _)| archive);
        !file.is_empty() && !file.contains(['/', '\\']) && file != "." && file != ".."
    };
    match spec {
        DataSpec::Npy { inputs, labels, .. } => {
            inputs.values().all(|p| plain(p)) && labels.as_deref().is_none_or(plain)
        }
        DataSpec::Images { root, labels, .. } => {
            root == "img" && labels.as_deref().is_none_or(plain)
        }
    }
}
