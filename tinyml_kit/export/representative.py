"""Representative data for post-training quantisation, from whatever the user trains with.

Accepted: a numpy array of samples, an ``(x, y)`` tuple, a tinyml-kit ``Dataset`` (its ``.x``),
a ``tf.data.Dataset`` (batched or not, elements ``x`` or ``(x, y)``), a generator or a function
returning one (TFLite's own convention: it yields ``[x]`` per sample). Whatever comes in leaves as
float32 samples with a batch dimension of 1, in the model's own input scale (no normalisation here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tinyml_kit.export.errors import ExportError

InputShape = tuple[int | None, ...]  # without the batch dimension


def iter_samples(data: Any, input_shapes: Sequence[InputShape], max_samples: int | None = None
                 ) -> Iterator[list[np.ndarray]]:
    """Yield one list of arrays (one per model input, each with batch 1) per representative sample."""
    if data is None:
        raise ExportError("int8 conversion needs representative data (a few hundred training samples).")
    count = 0
    for element in _elements(data, len(input_shapes)):
        for sample in _split(element, input_shapes):
            yield sample
            count += 1
            if max_samples is not None and count >= max_samples:
                return
    if count == 0:
        raise ExportError("the representative data yielded no samples; pass a few hundred training inputs.")


def collect_samples(data: Any, input_shapes: Sequence[InputShape], max_samples: int | None = None
                    ) -> list[list[np.ndarray]]:
    """All samples in a list, so that bad data fails before a slow conversion starts."""
    return list(iter_samples(data, input_shapes, max_samples))


def _elements(data: Any, num_inputs: int) -> Iterator[Any]:
    """Top-level items of the data: whole arrays, dataset elements or generator items."""
    if hasattr(data, "x") and hasattr(data, "y") and not isinstance(data, np.ndarray):
        yield data.x  # a tinyml_kit.data Dataset
        return
    if isinstance(data, np.ndarray):
        yield data
        return
    if _is_tf_dataset(data):
        yield from data.as_numpy_iterator()
        return
    if callable(data):
        data = data()
    if isinstance(data, tuple) and num_inputs == 1 and len(data) == 2 and _array_like(data[0]):
        yield data[0]  # (x, y)
        return
    if isinstance(data, (list, tuple)) and num_inputs > 1 and len(data) == num_inputs \
            and all(_array_like(a) for a in data):
        yield list(data)  # one array per input
        return
    try:
        yield from iter(data)
    except TypeError:
        raise ExportError(
            f"cannot read representative data of type {type(data).__name__}; pass a numpy array, (x, y), "
            "a tf.data.Dataset or a generator yielding [x]."
        ) from None


def _split(element: Any, input_shapes: Sequence[InputShape]) -> Iterator[list[np.ndarray]]:
    """Turn one element (a sample or a batch, possibly with labels) into samples of batch 1."""
    if isinstance(element, dict):
        raise ExportError("dict-structured representative data is not supported; pass the input arrays.")
    if isinstance(element, (list, tuple)):
        if len(input_shapes) == 1:
            element = element[0]  # [x] (TFLite convention) or (x, y)
        elif len(element) == 2 and isinstance(element[0], (list, tuple)):
            element = element[0]  # ((x1, x2), y)
    arrays = [element] if len(input_shapes) == 1 else list(element)
    if len(arrays) != len(input_shapes):
        raise ExportError(f"the model has {len(input_shapes)} inputs; a representative element has "
                          f"{len(arrays)} arrays.")
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    pairs = enumerate(zip(arrays, input_shapes, strict=True))
    batched = [_with_batch(a, shape, i) for i, (a, shape) in pairs]
    size = {len(a) for a in batched}
    if len(size) != 1:
        raise ExportError("representative arrays for the model's inputs have different lengths: "
                          f"{sorted(size)}")
    for row in range(size.pop()):
        yield [a[row:row + 1] for a in batched]


def _with_batch(array: np.ndarray, shape: InputShape, index: int) -> np.ndarray:
    if array.ndim == len(shape):
        array = array[None]
    if array.ndim != len(shape) + 1 or not all(
            d is None or d == a for d, a in zip(shape, array.shape[1:], strict=True)):
        raise ExportError(
            f"representative data for input {index} has shape {array.shape}; the model expects "
            f"(batch, {', '.join('?' if d is None else str(d) for d in shape)})."
        )
    return array


def _array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype"))


def _is_tf_dataset(value: Any) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "as_numpy_iterator")
