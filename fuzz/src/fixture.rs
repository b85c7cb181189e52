//! The fixture folder: files a fuzzed input may name, beside the bytes of the input itself.
//!
//! One folder per process in `$TMPDIR`, made on first use and kept for the life of the process (libFuzzer exits
//! without running destructors anyway). It holds valid `.npy` arrays, a label list and a 1×1 PNG for data specs,
//! and `weights.bin` for ONNX external data. Targets write the fuzzed bytes into it under fixed names while
//! holding [`lock`], so replay tests running on several threads never race.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use aquant::data::npy_bytes;

/// Excludes other threads from the fixture folder's fuzzed files.
pub fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The folder, made on first use.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("aquant-fuzz-")
            .tempdir()
            .expect("a temporary folder")
            .keep();
        write_fixtures(&dir);
        dir
    })
}

/// Writes `bytes` as `name` in the folder (call with [`lock`] held).
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, bytes).expect("the fixture folder is writable");
    path
}

fn write_fixtures(dir: &Path) {
    let f32s: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 / 4.0).to_le_bytes())
        .collect();
    let labels: Vec<u8> = [3i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let weights: Vec<u8> = (0..16)
        .flat_map(|i| (i as f32 - 7.5).to_le_bytes())
        .collect();
    let files = [
        ("x.npy", npy_bytes("<f4", &[3, 1, 2, 2], &f32s)),
        ("u8.npy", npy_bytes("|u1", &[3, 1, 2, 2], &[7; 12])),
        ("y.npy", npy_bytes("<i8", &[3], &labels)),
        ("labels.txt", b"a_1.png 1\n".to_vec()),
        ("weights.bin", weights),
    ];
    let fail = "the fixture folder is writable";
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect(fail);
    }
    std::fs::create_dir(dir.join("img")).expect(fail);
    std::fs::write(dir.join("img/a_1.png"), TINY_PNG).expect(fail);
}

/// A 1×1 RGB PNG.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];
