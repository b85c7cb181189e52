//! Where the ONNX Runtime shared library is ([`aquant::runtime_library`]).

use std::path::PathBuf;

use aquant::runtime_library::RuntimeLibrary;

/// The environment variable naming the library file (the `ort` crate's convention).
pub const DYLIB_VARIABLE: &str = "ORT_DYLIB_PATH";

/// ONNX Runtime's library: `libonnxruntime.so.X.Y.Z` in the wheel's `capi/`, never a provider's library.
const LIBRARY: RuntimeLibrary = RuntimeLibrary {
    variable: DYLIB_VARIABLE,
    package: "onnxruntime",
    subdir: "capi",
    linux_prefix: "libonnxruntime.so",
    macos_name: "libonnxruntime.dylib",
};

/// The ONNX Runtime library to load: `$ORT_DYLIB_PATH`, else the one inside the `onnxruntime` Python package
/// of the first `python3` on the `PATH`.
pub fn find_library() -> Result<PathBuf, LibraryNotFound> {
    LIBRARY.find().map_err(LibraryNotFound)
}

/// No ONNX Runtime library could be located.
#[derive(Debug, thiserror::Error)]
#[error("ONNX Runtime not found: {0} (pip install onnxruntime, or set ORT_DYLIB_PATH to libonnxruntime.so)")]
pub struct LibraryNotFound(String);

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
        let found = LIBRARY.library_in(dir.path()).unwrap();
        assert_eq!(found.file_name().unwrap(), "libonnxruntime.so.1.32.0");
    }

    #[test]
    fn an_empty_directory_has_no_library() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LIBRARY.library_in(dir.path()), None);
    }
}
