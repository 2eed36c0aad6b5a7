"""Helpers shared by the lowerings: tensor checks, TFLite padding and overlap (in-place) shifts.

Overlap shifts follow one rule: a kernel may write an output byte only once no later read of the
input needs that byte. For a kernel that writes output unit ``u`` (a pixel, an element) after
reading everything of unit ``u`` it needs, placing the output at ``shift = out_offset - in_offset``
is safe iff for every unit ``u`` except the last::

    shift + end_of_output_unit(u) <= first_input_byte_read_after(u)

so ``max_shift = min_u(first_input_byte_read_after(u) - end_of_output_unit(u))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op, Tensor


def activation(graph: Graph, op: Op, index: int) -> Tensor:
    """The activation tensor at ``op.inputs[index]`` (must not be a constant)."""
    t = graph.tensors[op.inputs[index]]
    if t.is_const:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} has a constant input {index} "
                                 f"('{t.name}'); the engine expects an activation there.")
    return t


def constant(graph: Graph, op: Op, index: int, *, optional: bool = False) -> Tensor | None:
    """The constant tensor at ``op.inputs[index]`` (None for an omitted optional input)."""
    if index >= len(op.inputs) or op.inputs[index] == -1:
        if optional:
            return None
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} lacks its input {index}.")
    t = graph.tensors[op.inputs[index]]
    if not t.is_const:
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} input {index} ('{t.name}') is computed at run time; the "
            "engine needs constant weights and biases. Re-export with constant-folded weights."
        )
    return t


def require_dtype(graph: Graph, op: Op, tensor: Tensor, *dtypes: str) -> None:
    if tensor.dtype not in dtypes:
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} tensor '{tensor.name}' is {tensor.dtype}; this op supports "
            f"{' or '.join(dtypes)}. Re-export the model with full-integer int8 quantisation."
        )


def per_tensor(graph: Graph, op: Op, tensor: Tensor) -> tuple[float, int]:
    """``(scale, zero_point)`` of a per-tensor quantised activation."""
    q = tensor.quant
    if q is None or q.per_channel:
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} tensor '{tensor.name}' needs per-tensor quantisation "
            f"(found {'none' if q is None else 'per-channel'})."
        )
    return float(q.scale[0]), int(q.zero_point[0])


def clamp_range(op: Op) -> tuple[int, int]:
    """Output clamp range set by passes.fold_activation_ranges (full int8 range by default)."""
    return int(op.attrs.get("act_min", -128)), int(op.attrs.get("act_max", 127))


def nhwc(graph: Graph, op: Op, tensor: Tensor) -> tuple[int, int, int]:
    """``(h, w, c)`` of a 4-D batch-1 NHWC tensor."""
    if len(tensor.shape) != 4 or tensor.shape[0] != 1:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} tensor '{tensor.name}' has shape "
                                 f"{tensor.shape}; the engine supports 4-D NHWC tensors with batch 1.")
    return int(tensor.shape[1]), int(tensor.shape[2]), int(tensor.shape[3])


def tflite_padding(stride: int, dilation: int, in_size: int, filter_size: int, out_size: int) -> int:
    """TFLite ``ComputePaddingWithOffset``: padding before the first element (extra goes after)."""
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2


def tflite_out_size(padding: str, in_size: int, filter_size: int, stride: int, dilation: int) -> int:
    """TFLite ``ComputeOutSize``."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


@dataclass(frozen=True)
class Window:
    """Geometry of a sliding-window op on a batch-1 NHWC input (after fused PAD)."""

    in_h: int
    in_w: int
    out_h: int
    out_w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_top: int
    pad_left: int

    def first_reads(self) -> np.ndarray:
        """For each output pixel (raster order), the first input pixel index its window reads
        (``y * in_w + x``), or a huge value when the window lies fully outside the input."""
        def first_valid(origin: np.ndarray, k: int, d: int, size: int) -> np.ndarray:
            start = np.where(origin >= 0, 0, (-origin + d - 1) // d)
            pos = origin + start * d
            ok = (start < k) & (pos < size)
            return np.where(ok, pos, -1)

        oy = np.arange(self.out_h) * self.stride_h - self.pad_top
        ox = np.arange(self.out_w) * self.stride_w - self.pad_left
        ry = first_valid(oy, self.k_h, self.dilation_h, self.in_h)
        rx = first_valid(ox, self.k_w, self.dilation_w, self.in_w)
        first = ry[:, None] * self.in_w + rx[None, :]
        never = (ry[:, None] < 0) | (rx[None, :] < 0)
        return np.where(never, np.iinfo(np.int64).max // 4, first).reshape(-1).astype(np.int64)

    def has_empty_window(self) -> bool:
        return bool(np.any(self.first_reads() >= np.iinfo(np.int64).max // 4))


def window_geometry(graph: Graph, op: Op, in_hw: tuple[int, int], out_hw: tuple[int, int],
                    k_hw: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> Window:
    """TFLite padding of a conv/pool op, including a PAD folded in by passes.fuse_pad.

    An op lowered for one patch of a patch stage (``tinyml_kit.engine.patch``) carries
    ``op.attrs["patch_pads"] = (top, left)``: the padding that makes the local input and output regions
    line up exactly as in the full frame (negative when the input is the whole frame and the patch
    starts inside it); then no consistency check against the op's own padding applies."""
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    if "patch_pads" in op.attrs:
        top, left = (int(v) for v in op.attrs["patch_pads"])
        return Window(in_h=in_hw[0], in_w=in_hw[1], out_h=out_hw[0], out_w=out_hw[1], k_h=k_hw[0],
                      k_w=k_hw[1], stride_h=stride_h, stride_w=stride_w, dilation_h=dilation[0],
                      dilation_w=dilation[1], pad_top=top, pad_left=left)
    padding = op.options.get("padding", "VALID")
    top, bottom, left, right = op.attrs.get("extra_padding", (0, 0, 0, 0))
    in_h, in_w = in_hw
    padded_h, padded_w = in_h + top + bottom, in_w + left + right
    exp_h = tflite_out_size(padding, padded_h, k_hw[0], stride_h, dilation[0])
    exp_w = tflite_out_size(padding, padded_w, k_hw[1], stride_w, dilation[1])
    if (exp_h, exp_w) != tuple(out_hw):
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} output is {out_hw[0]}x{out_hw[1]} but {padding} padding with "
            f"stride {stride_h}x{stride_w} on a {padded_h}x{padded_w} input gives {exp_h}x{exp_w}; "
            "the model is inconsistent."
        )
    pad_top = tflite_padding(stride_h, dilation[0], padded_h, k_hw[0], out_hw[0]) + top
    pad_left = tflite_padding(stride_w, dilation[1], padded_w, k_hw[1], out_hw[1]) + left
    return Window(in_h=in_h, in_w=in_w, out_h=out_hw[0], out_w=out_hw[1], k_h=k_hw[0], k_w=k_hw[1],
                  stride_h=stride_h, stride_w=stride_w, dilation_h=dilation[0], dilation_w=dilation[1],
                  pad_top=pad_top, pad_left=pad_left)


def window_max_shift(win: Window, in_pixel_bytes: int, out_pixel_bytes: int, *, staged: bool) -> int:
    """Largest safe ``out_offset - in_offset`` for a window op writing output pixels in raster order.

    ``staged``: the kernel copies a pixel's whole receptive field before writing that pixel's outputs
    (conv); otherwise reads and writes of one pixel interleave (depthwise, pooling), so a pixel's
    outputs must also stay clear of its own window.
    """
    first = win.first_reads() * in_pixel_bytes
    suffix_min = np.minimum.accumulate(first[::-1])[::-1]  # first byte read by pixel >= p
    ends = (np.arange(first.size, dtype=np.int64) + 1) * out_pixel_bytes
    if staged:
        if first.size < 2:
            return win.in_h * win.in_w * in_pixel_bytes  # one pixel: all reads precede all writes
        bound = suffix_min[1:] - ends[:-1]
    else:
        bound = suffix_min - ends
    return int(bound.min())


def elementwise_max_shift(count: int, in_elem_bytes: int, out_elem_bytes: int) -> int:
    """Largest safe shift for a kernel that reads element i, then writes element i, in order."""
    if count < 2:
        return count * in_elem_bytes
    return min(in_elem_bytes - out_elem_bytes, (count - 1) * (in_elem_bytes - out_elem_bytes))


def folded_bias(graph: Graph, op: Op, bias: np.ndarray | None, filters: np.ndarray,
                input_offset: int) -> np.ndarray:
    """``bias + input_offset * sum(filter row)`` per output channel (rows = first axis), int32."""
    sums = filters.reshape(filters.shape[0], -1).astype(np.int64).sum(axis=1)
    base = np.zeros(filters.shape[0], dtype=np.int64) if bias is None else bias.astype(np.int64)
    out = base + int(input_offset) * sums
    if np.any(out > np.iinfo(np.int32).max) or np.any(out < np.iinfo(np.int32).min):
        raise UnsupportedOpError(f"{graph.source}: {op.describe()}: bias + input offset * filter sum "
                                 "overflows int32; the weights or zero points are out of range.")
    return out.astype(np.int32)
