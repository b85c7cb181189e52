//! Where an engine loaded at run time keeps its shared library.
//!
//! aquant ships neither ONNX Runtime nor OpenVINO: users who have one (every `pip install onnxruntime` or
//! `pip install openvino` brings its library) point at it with an environment variable, or let aquant ask
//! Python where the package is. Wheels ship versioned file names (`libonnxruntime.so.1.32.0`,
//! `libopenvino_c.so.2641`) that the engines' own finders do not look for, so the file is found here and the
//! engine loads it by its full path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One engine's library: where to look and what its file is called.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeLibrary {
    /// The environment variable naming the file (or a directory holding it).
    pub variable: &'static str,
    /// The Python package that ships it.
    pub package: &'static str,
    /// The package's subdirectory holding it.
    pub subdir: &'static str,
    /// The file name's start on Linux (`libonnxruntime.so` matches `libonnxruntime.so.1.32.0`), which must not
    /// match the engine's other libraries (providers, plugins, the C++ core).
    pub linux_prefix: &'static str,
    /// The macOS file name.
    pub macos_name: &'static str,
}

impl RuntimeLibrary {
    /// The library to load: the variable's file (or the library in its directory), else the one inside the
    /// Python package of the first `python3` on the `PATH`. The error says why none was found.
    pub fn find(&self) -> Result<PathBuf, String> {
        let variable = self.variable;
        if let Some(path) = std::env::var_os(variable) {
            let path = PathBuf::from(path);
            if path.is_dir() {
                let holds = self.library_in(&path);
                return holds
                    .ok_or_else(|| format!("{variable}={} holds no library", path.display()));
            }
            if !path.is_file() {
                return Err(format!("{variable}={} is not a file", path.display()));
            }
            return Ok(path);
        }
        let package = self.python_package_dir().ok_or_else(|| {
            format!(
                "{variable} is not set and no Python {} package was found",
                self.package
            )
        })?;
        let dir = package.join(self.subdir);
        self.library_in(&dir)
            .ok_or_else(|| format!("no {} in {}", self.linux_prefix, dir.display()))
    }

    /// The library in `dir`: the last versioned name in sort order, or the plain or macOS name.
    pub fn library_in(&self, dir: &Path) -> Option<PathBuf> {
        let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(self.linux_prefix) || n == self.macos_name)
            })
            .collect();
        candidates.sort();
        candidates.pop()
    }

    fn python_package_dir(&self) -> Option<PathBuf> {
        let script = format!(
            "import {0}, os; print(os.path.dirname({0}.__file__))",
            self.package
        );
        let output = Command::new("python3")
            .args(["-c", &script])
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let dir = String::from_utf8(output.stdout).ok()?;
        Some(PathBuf::from(dir.trim()))
    }
}
