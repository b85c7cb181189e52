//! Where the OpenVINO C library is ([`aquant::runtime_library`]). The `openvino` crate's own finder looks only
//! for an unversioned `libopenvino_c.so`, which the wheel does not have.

use std::path::PathBuf;

use aquant::runtime_library::RuntimeLibrary;

/// The environment variable naming the library file (or the directory holding it).
pub const LIBRARY_VARIABLE: &str = "OPENVINO_LIB_PATH";

/// OpenVINO's C API library: `libopenvino_c.so.2641` in the wheel's `libs/`; never `libopenvino.so` (the C++
/// core) or a plugin.
const LIBRARY: RuntimeLibrary = RuntimeLibrary {
    variable: LIBRARY_VARIABLE,
    package: "openvino",
    subdir: "libs",
    linux_prefix: "libopenvino_c.so",
    macos_name: "libopenvino_c.dylib",
};

/// The OpenVINO C library to load: `$OPENVINO_LIB_PATH` (the file, or a directory holding it), else the one
/// inside the `openvino` Python package of the first `python3` on the `PATH`.
pub fn find_library() -> Result<PathBuf, LibraryNotFound> {
    LIBRARY.find().map_err(LibraryNotFound)
}

/// No OpenVINO library could be located.
#[derive(Debug, thiserror::Error)]
#[error(
    "OpenVINO not found: {0} (pip install openvino, or set OPENVINO_LIB_PATH to libopenvino_c.so)"
)]
pub struct LibraryNotFound(String);

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
        let found = LIBRARY.library_in(dir.path()).unwrap();
        assert_eq!(found.file_name().unwrap(), "libopenvino_c.so.2641");
    }

    #[test]
    fn an_empty_directory_has_no_library() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LIBRARY.library_in(dir.path()), None);
    }
}
