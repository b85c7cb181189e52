//! A view of some samples of a dataset, renumbered from 0: the search's part of a validation set whose other
//! part is held out (issue #30), so that nothing downstream can reach a held-out sample by its index.

use super::{Dataset, Sample};
use crate::error::{Error, Result};

/// Samples `indices` of `dataset`, as samples `0..indices.len()`.
pub struct Subset<'a> {
    dataset: &'a dyn Dataset,
    indices: Vec<usize>,
}

impl<'a> Subset<'a> {
    /// The view of `indices` (each below `dataset.len()`).
    pub fn new(dataset: &'a dyn Dataset, indices: Vec<usize>) -> Result<Self> {
        match indices.iter().find(|&&i| i >= dataset.len()) {
            Some(i) => Err(Error::data(format!(
                "sample {i} is out of range ({} samples)",
                dataset.len()
            ))),
            None => Ok(Subset { dataset, indices }),
        }
    }

    /// The underlying dataset's indices of the view's samples.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let inner = self.indices.get(index).ok_or_else(|| {
            Error::data(format!(
                "sample {index} is out of range ({} samples)",
                self.indices.len()
            ))
        })?;
        self.dataset.get(*inner)
    }

    fn label(&self, index: usize) -> Option<i64> {
        self.dataset.label(*self.indices.get(index)?)
    }
}
