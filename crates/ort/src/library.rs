//! Where the ONNX Runtime shared library is.
//!
//! aquant does not ship ONNX Runtime: users who have it (every `pip install onnxruntime` brings
//! `libonnxruntime.so`) point at it, or let aquant ask Python where the package is.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the library file (the `ort` crate's convention).
pub const DYLIB_VARIABLE: &str = "ORT_DYLIB_PATH";

/// The ONNX Runtime library to load: `$ORT_DYLIB_PATH`, else the one inside the `onnxruntime` Python package
/// of the first `python3` on the `PATH`.
pub fn find_library() -> Result<PathBuf, LibraryNotFound> {
    if let Some(path) = std::env::var_os(DYLIB_VARIABLE) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(not_found(&format!(
                "{DYLIB_VARIABLE}={} is not a file",
                path.display()
            )));
        }
        return Ok(path);
    }
    let package = python_package_dir().ok_or_else(|| {
        not_found(&format!(
            "{DYLIB_VARIABLE} is not set and no Python onnxruntime package was found"
        ))
    })?;
    library_in(&package.join("capi")).ok_or_else(|| {
        not_found(&format!(
            "no libonnxruntime in {}",
            package.join("capi").display()
        ))
    })
}

/// No ONNX Runtime library could be located.
#[derive(Debug, thiserror::Error)]
#[error("ONNX Runtime not found: {0} (pip install onnxruntime, or set ORT_DYLIB_PATH to libonnxruntime.so)")]
pub struct LibraryNotFound(String);

fn not_found(why: &str) -> LibraryNotFound {
    LibraryNotFound(why.to_owned())
}

fn python_package_dir() -> Option<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

/// The versioned `libonnxruntime.so.X.Y.Z` (or the plain name) in `dir`.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    candidates.sort();
    candidates.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_versioned_library_and_ignores_providers() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libonnxruntime_providers_shared.so",
            "libonnxruntime.so.1.32.0",
            "other.so",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found = library_in(dir.path()).unwrap();
        assert_eq!(found.file_name().unwrap(), "libonnxruntime.so.1.32.0");
    }

    #[test]
    fn an_empty_directory_has_no_library() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(library_in(dir.path()), None);
    }
}
