"""Datasets: ``aquant.Dataset`` (NNCF's ``nncf.Dataset``), and the one protocol the Rust side reads.

Every dataset the package accepts — an ``aquant.Dataset``, an ``nncf.Dataset`` (duck-typed: NNCF need not be
installed), a POT ``DataLoader`` — becomes a :class:`Source`: ``len``, ``inputs(i)`` (what the model is fed for
item ``i``), ``annotation(i)`` (what a metric scores it against) and ``data(indices)`` (the raw items, as NNCF
hands them to ``validation_fn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Iterable, Optional

import numpy as np


class Dataset:
    """NNCF's ``nncf.Dataset(data_source, transform_func)``: the items of ``data_source`` (any iterable), fed to
    the model as ``transform_func(item)`` (the item itself without one).

    ``transform_func`` returns what the model takes for one item, batched (a leading axis of length 1): one
    array, a tuple/list of arrays in the model's input order, or a dict input name → array.
    """

    def __init__(self, data_source: Iterable, transform_func: Optional[Callable[[Any], Any]] = None):
        self._data_source = data_source
        self._transform_func = transform_func

    def get_data(self, indices: Optional[list[int]] = None) -> Iterable:
        """The raw items (those at ``indices``, in order, when given)."""
        items = _indexable(self._data_source)
        return items if indices is None else [items[i] for i in indices]

    def get_inference_data(self, indices: Optional[list[int]] = None) -> Iterable:
        """The transformed items (those at ``indices``, in order, when given)."""
        transform = self._transform_func or (lambda item: item)
        return [transform(item) for item in self.get_data(indices)]

    def get_length(self) -> Optional[int]:
        """Number of items, when the source knows it."""
        return len(self._data_source) if hasattr(self._data_source, "__len__") else None

    def get_batch_size(self) -> Optional[int]:
        """Items per batch: 1 (aquant batches samples itself)."""
        return 1


def _indexable(source: Iterable) -> Sequence:
    """``source`` itself when it can be indexed, else its items read once into a list."""
    if isinstance(source, (Sequence, np.ndarray)) or (
        hasattr(source, "__getitem__") and hasattr(source, "__len__")
    ):
        return source
    return list(source)


def default_annotation(item: Any) -> Any:
    """What a metric scores item ``item`` against: the second element of a ``(data, annotation[, metadata])``
    tuple, as POT's ``DataLoader`` gives, else the item itself."""
    if isinstance(item, tuple) and len(item) in (2, 3):
        return item[1]
    return item


class Source:
    """A dataset as the Rust side reads it: indexable raw items, a transform and an annotation per item."""

    def __init__(
        self,
        items: Sequence,
        transform: Callable[[Any], Any],
        annotation: Callable[[Any], Any] = default_annotation,
        raw: Callable[[Any], Any] = lambda item: item,
    ):
        self.items = items
        self.transform = transform
        self.annotation_of = annotation
        self.raw = raw

    def __len__(self) -> int:
        return len(self.items)

    def inputs(self, index: int) -> Any:
        return self.transform(self.items[index])

    def annotation(self, index: int) -> Any:
        return self.annotation_of(self.items[index])

    def data(self, indices: list[int]) -> list:
        return [self.raw(self.items[i]) for i in indices]


def source(dataset: Any, name: str) -> Source:
    """``dataset`` (an ``aquant.Dataset``, an ``nncf.Dataset`` or a :class:`Source`) as a :class:`Source`."""
    if isinstance(dataset, Source):
        return dataset
    data_source = getattr(dataset, "_data_source", None)
    if data_source is not None or hasattr(dataset, "_transform_func"):
        transform = getattr(dataset, "_transform_func", None) or (lambda item: item)
        return Source(_indexable(data_source), transform)
    if hasattr(dataset, "get_data") and hasattr(dataset, "get_inference_data"):
        pairs = list(zip(dataset.get_data(), dataset.get_inference_data()))
        return Source(pairs, lambda p: p[1], lambda p: default_annotation(p[0]), lambda p: p[0])
    raise TypeError(
        f"{name} must be an aquant.Dataset or an nncf.Dataset (got {type(dataset).__name__}); "
        "wrap your data as aquant.Dataset(data_source, transform_func)"
    )
