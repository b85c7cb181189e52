//! Where the OpenVINO C library is.
//!
//! aquant does not ship OpenVINO: users who have it (every `pip install openvino` brings
//! `openvino/libs/libopenvino_c.so.VERSION`) point at it, or let aquant ask Python where the package is. The
//! `openvino` crate's own finder looks only for an unversioned `libopenvino_c.so`, which the wheel does not
//! have, so the file is found here and loaded by its full path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the library file (or the directory holding it).
pub const LIBRARY_VARIABLE: &str = "OPENVINO_LIB_PATH";

/// The OpenVINO C library to load: `$OPENVINO_LIB_PATH` (the file, or a directory holding it), else the one
/// inside the `openvino` Python package of the first `python3` on the `PATH`.
pub fn find_library() -> Result<PathBuf, LibraryNotFound> {
    if let Some(path) = std::env::var_os(LIBRARY_VARIABLE) {
        let path = PathBuf::from(path);
        if path.is_dir() {
            return library_in(&path).ok_or_else(|| {
                not_found(&format!(
                    "{LIBRARY_VARIABLE}={} holds no libopenvino_c",
                    path.display()
                ))
            });
        }
        if !path.is_file() {
            return Err(not_found(&format!(
                "{LIBRARY_VARIABLE}={} is not a file",
                path.display()
            )));
        }
        return Ok(path);
    }
    let package = python_package_dir().ok_or_else(|| {
        not_found(&format!(
            "{LIBRARY_VARIABLE} is not set and no Python openvino package was found"
        ))
    })?;
    let libs = package.join("libs");
    library_in(&libs).ok_or_else(|| not_found(&format!("no libopenvino_c in {}", libs.display())))
}

/// No OpenVINO library could be located.
#[derive(Debug, thiserror::Error)]
#[error(
    "OpenVINO not found: {0} (pip install openvino, or set OPENVINO_LIB_PATH to libopenvino_c.so)"
)]
pub struct LibraryNotFound(String);

fn not_found(why: &str) -> LibraryNotFound {
    LibraryNotFound(why.to_owned())
}

fn python_package_dir() -> Option<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import openvino, os; print(os.path.dirname(openvino.__file__))",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

/// The C API library in `dir`: `libopenvino_c.so.2641` (the wheel), `libopenvino_c.so` or the macOS dylib;
/// never `libopenvino.so` (the C++ core) or a plugin.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libopenvino_c.so") || n == "libopenvino_c.dylib")
        })
        .collect();
    candidates.sort();
    candidates.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_c_library_and_ignores_the_core_and_plugins() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libopenvino.so.2026.4.1",
            "libopenvino_intel_cpu_plugin.so",
            "libopenvino_c.so.2641",
            "libopenvino_onnx_frontend.so.2641",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found = library_in(dir.path()).unwrap();
        assert_eq!(found.file_name().unwrap(), "libopenvino_c.so.2641");
    }

    #[test]
    fn an_empty_directory_has_no_library() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(library_in(dir.path()), None);
    }
}
