"""The engine's graph IR: what the reader produces and every later stage consumes.

Data flows one way: ``reader`` (flatbuffer -> :class:`Graph`) -> ``passes`` (aliases, fusions,
requantisation constants) -> ``planner`` (offsets in one arena) -> ``codegen`` (C project).
The IR is deliberately small and plain: numpy arrays and dataclasses, no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPE_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "float16": 2,
               "bool": 1}


@dataclass
class Quantization:
    """Affine quantisation ``real = scale * (q - zero_point)``.

    ``axis`` is None for per-tensor quantisation (``scale``/``zero_point`` have one element) and the
    quantised dimension for per-channel quantisation.
    """

    scale: np.ndarray  # float64, shape (1,) or (channels,)
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return self.axis is not None and self.scale.size > 1


@dataclass
class Tensor:
    """One tensor of the model. ``data`` is set for constants (weights, biases, shapes)."""

    index: int  # index in the flatbuffer's subgraph tensor list
    name: str
    shape: tuple[int, ...]
    dtype: str  # key of DTYPE_SIZES
    quant: Quantization | None = None
    data: np.ndarray | None = None
    alias_of: int | None = None  # set by passes: this tensor shares the bytes of another (RESHAPE...)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * DTYPE_SIZES[self.dtype]


@dataclass
class Op:
    """One operator in execution order.

    ``inputs``/``outputs`` are tensor indices (-1 marks an omitted optional input, as in TFLite).
    ``options`` holds the decoded builtin options with TFLite's field names in snake_case
    (``stride_w``, ``padding`` as "SAME"/"VALID", ``fused_activation_function`` as "NONE"/"RELU"/...).
    ``attrs`` is filled by passes with derived values (requantisation multipliers, fused padding...).
    """

    index: int  # position in the flatbuffer's operator list (for error messages)
    type: str  # builtin op name, e.g. "CONV_2D"
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"op #{self.index} ({self.type})"


@dataclass
class Graph:
    """A single-subgraph model: tensors by index, ops in execution order, graph inputs/outputs."""

    tensors: dict[int, Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    source: str = "<memory>"  # file the graph was read from, for messages

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def producer(self, tensor_index: int) -> Op | None:
        for op in self.ops:
            if tensor_index in op.outputs:
                return op
        return None

    def consumers(self, tensor_index: int) -> list[Op]:
        return [op for op in self.ops if tensor_index in op.inputs]

    def storage(self, tensor_index: int) -> int:
        """Follow ``alias_of`` to the tensor that owns the bytes."""
        t = self.tensors[tensor_index]
        while t.alias_of is not None:
            t = self.tensors[t.alias_of]
        return t.index
