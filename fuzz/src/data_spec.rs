//! `data_spec`: bytes → data-spec JSON and an `.npy`/`.npz` file → dataset → samples.
//!
//! An input is `<spec JSON> NUL <array bytes>` (JSON text never holds a raw NUL, so the split is unambiguous;
//! without a NUL the whole input is the spec). The array bytes are written as `fuzz.npy` and `fuzz.npz` into a
//! fixture folder that also holds valid arrays, a label list and a tiny image; the spec is opened there and its
//! first samples are read. Specs naming anything outside the fixture folder are skipped: a fuzzer must not read
//! `/dev/stdin` or the rest of the machine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use aquant::data::npy_bytes;
use aquant::{DataSpec, Dataset};

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
    // One fixture folder per process; the lock keeps replay tests on several threads from racing on it.
    let _guard = FIXTURE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fixture_dir();
    for name in ["fuzz.npy", "fuzz.npz"] {
        std::fs::write(dir.join(name), array).expect("the fixture folder is writable");
    }
    let Ok(dataset) = spec.open(dir) else {
        return;
    };
    read_samples(dataset.as_ref());
}

static FIXTURE_LOCK: Mutex<()> = Mutex::new(());

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

/// The fixture folder, made once per process: valid arrays the fuzzed spec may name beside the fuzzed one.
fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Kept for the life of the process (libFuzzer exits without running destructors anyway).
        let dir = tempfile::Builder::new()
            .prefix("aquant-fuzz-")
            .tempdir()
            .expect("a temporary folder")
            .keep();
        write_fixtures(&dir);
        dir
    })
}

fn write_fixtures(dir: &Path) {
    let f32s: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 / 4.0).to_le_bytes())
        .collect();
    let labels: Vec<u8> = [3i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let files = [
        ("x.npy", npy_bytes("<f4", &[3, 1, 2, 2], &f32s)),
        ("u8.npy", npy_bytes("|u1", &[3, 1, 2, 2], &[7; 12])),
        ("y.npy", npy_bytes("<i8", &[3], &labels)),
        ("labels.txt", b"a_1.png 1\n".to_vec()),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("the fixture folder is writable");
    }
    std::fs::create_dir(dir.join("img")).expect("the fixture folder is writable");
    std::fs::File::create(dir.join("img/a_1.png"))
        .and_then(|mut f| f.write_all(TINY_PNG))
        .expect("the fixture folder is writable");
}

/// A 1×1 RGB PNG.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];
