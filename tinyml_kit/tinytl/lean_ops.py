"""Gradient functions that keep no activation alive for frozen layers (TensorFlow backend).

TinyTL's observation (Cai et al., NeurIPS 2020, section 3.1): for a layer ``y = x W + b`` whose
weight ``W`` is frozen, the backward pass needs ``dL/dx = dL/dy W^T`` and ``dL/db = sum dL/dy``,
neither of which reads ``x``. Framework autodiff still records ``x`` because the generic gradient of
a convolution also computes ``dL/dW``. The functions here are ``tf.custom_gradient`` versions whose
backward closures capture only weights and static shapes:

* :func:`frozen_conv2d`, :func:`frozen_depthwise_conv2d`, :func:`frozen_matmul`: the input is not kept;
  an optional bias is added inside, its gradient is the summed output gradient.
* :func:`frozen_affine`: a normalisation with frozen statistics and frozen scale is
  ``x * scale + shift``; ``dL/dx = dL/dy * scale``; ``dL/dshift`` is summed.
* :func:`masked_relu`: ReLU / ReLU6 keep a 1-bit mask (``0 < x < max``) packed 8 per byte instead of
  their float32 input or output.
* :func:`resize_bilinear`: the gradient of bilinear resizing needs only the input's shape.

Gradients equal TensorFlow's own ones to float32 rounding: the backward passes call the same
kernels (``Conv2DBackpropInput``, ``DepthwiseConv2dNativeBackpropInput``, ``ResizeBilinearGrad``...).
Every function takes and returns ``tf.Tensor`` values; callers read variables outside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

_BIT_WEIGHTS = (1, 2, 4, 8, 16, 32, 64, 128)


def _sum_to_channels(dy: tf.Tensor) -> tf.Tensor:
    """Sum a gradient over every axis but the last (the gradient of a broadcast per-channel add)."""
    return tf.reduce_sum(dy, axis=tf.range(tf.rank(dy) - 1))


def _with_optional_bias(forward: Any, backward_x: Any, x: tf.Tensor, weight: tf.Tensor,
                        bias: tf.Tensor | None) -> tf.Tensor:
    """Wrap ``forward(x, weight) [+ bias]`` in a custom gradient whose backward is ``backward_x``."""
    shape = tf.shape(x)  # computed before ``forward`` (control dependency): ``x`` is freed early

    def run(x: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies([shape]):
            return forward(x, weight)

    if bias is None:

        @tf.custom_gradient
        def op(x: tf.Tensor, weight: tf.Tensor) -> tuple:
            def grad(dy: tf.Tensor) -> tuple:
                return backward_x(shape, weight, dy), None

            return run(x, weight), grad

        return op(x, weight)

    @tf.custom_gradient
    def op_bias(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor) -> tuple:
        def grad(dy: tf.Tensor) -> tuple:
            return backward_x(shape, weight, dy), None, _sum_to_channels(dy)

        return tf.nn.bias_add(run(x, weight), bias), grad

    return op_bias(x, weight, bias)


def frozen_conv2d(
    x: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor | None = None,
    strides: Sequence[int] = (1, 1),
    padding: str = "VALID",
    dilations: Sequence[int] = (1, 1),
) -> tf.Tensor:
    """NHWC ``conv2d(x, kernel) + bias`` with a frozen kernel: the backward pass does not keep ``x``."""
    strides4 = [1, *strides, 1]
    dilations4 = [1, *dilations, 1]
    padding = padding.upper()

    def forward(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return tf.nn.conv2d(x, kernel, strides4, padding, dilations=dilations4)

    def backward_x(shape: tf.Tensor, kernel: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
        return tf.raw_ops.Conv2DBackpropInput(
            input_sizes=shape, filter=kernel, out_backprop=dy, strides=strides4, padding=padding,
            dilations=dilations4,
        )  # fmt: skip

    return _with_optional_bias(forward, backward_x, x, kernel, bias)


def frozen_depthwise_conv2d(
    x: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor | None = None,
    strides: Sequence[int] = (1, 1),
    padding: str = "VALID",
) -> tf.Tensor:
    """NHWC depthwise conv with a frozen ``(kh, kw, C, multiplier)`` kernel; ``x`` is not kept."""
    strides4 = [1, *strides, 1]
    padding = padding.upper()

    def forward(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return tf.nn.depthwise_conv2d(x, kernel, strides4, padding)

    def backward_x(shape: tf.Tensor, kernel: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
        return tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=shape, filter=kernel, out_backprop=dy, strides=strides4, padding=padding
        )

    return _with_optional_bias(forward, backward_x, x, kernel, bias)


def frozen_matmul(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | None = None) -> tf.Tensor:
    """``x @ kernel + bias`` for 2-D ``x`` with a frozen kernel; ``x`` is not kept."""

    def forward(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, kernel)

    def backward_x(shape: tf.Tensor, kernel: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
        return tf.matmul(dy, kernel, transpose_b=True)

    return _with_optional_bias(forward, backward_x, x, kernel, bias)


def frozen_affine(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """``x * scale + shift`` (per last-axis channel) with a frozen ``scale``; ``x`` is not kept.

    This is a normalisation layer with frozen statistics and frozen gamma; the gradient flows to
    ``shift`` (so to beta), never to ``scale``.
    """

    @tf.custom_gradient
    def op(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) -> tuple:
        def grad(dy: tf.Tensor) -> tuple:
            return dy * scale, None, _sum_to_channels(dy)

        return x * scale + shift, grad

    return op(x, scale, shift)


def pack_bits(mask: tf.Tensor) -> tf.Tensor:
    """A boolean tensor as a flat uint8 vector, 8 elements per byte (zero-padded at the end)."""
    flat = tf.reshape(tf.cast(mask, tf.uint8), [-1])
    pad = tf.math.floormod(-tf.size(flat), 8)
    groups = tf.reshape(tf.pad(flat, [[0, pad]]), [-1, 8])
    return tf.reduce_sum(groups * tf.constant(_BIT_WEIGHTS, tf.uint8), axis=1)


def unpack_bits(packed: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`pack_bits`: a boolean tensor of ``shape``."""
    bits = tf.bitwise.bitwise_and(packed[:, None], tf.constant(_BIT_WEIGHTS, tf.uint8)) > 0
    return tf.reshape(tf.reshape(bits, [-1])[: tf.reduce_prod(shape)], shape)


def masked_relu(x: tf.Tensor, max_value: float | None = None) -> tf.Tensor:
    """ReLU (``max_value=None``) or ReLU6 (``max_value=6``) that keeps a packed 1-bit mask for backward.

    The gradient passes where ``0 < x`` (and ``x < max_value``), as TensorFlow's ``ReluGrad`` /
    ``Relu6Grad`` do.
    """

    @tf.custom_gradient
    def op(x: tf.Tensor) -> tuple:
        top = None if max_value is None else tf.cast(max_value, x.dtype)
        mask = x > 0 if top is None else tf.logical_and(x > 0, x < top)
        shape = tf.shape(x)
        packed = pack_bits(mask)
        # The output waits for the mask, so graph executors free ``x`` right after this op
        # instead of keeping it until an arbitrarily late schedule computes the mask.
        with tf.control_dependencies([packed, shape]):
            y = tf.nn.relu(x) if top is None else tf.minimum(tf.nn.relu(x), top)

        def grad(dy: tf.Tensor) -> tf.Tensor:
            # a scalar zero: ``zeros_like(dy)`` would be constant-folded into a resident buffer
            return tf.where(unpack_bits(packed, shape), dy, tf.constant(0, dy.dtype))

        return y, grad

    return op(x)


def resize_bilinear(x: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Bilinear resize with half-pixel centres (PyTorch ``align_corners=False``); ``x`` is not kept."""
    size = tf.constant(list(size), tf.int32)

    @tf.custom_gradient
    def op(x: tf.Tensor) -> tuple:
        shape, dtype = tf.shape(x), x.dtype  # the closure below must not capture ``x`` itself
        with tf.control_dependencies([shape]):
            x = tf.identity(x)

        def grad(dy: tf.Tensor) -> tf.Tensor:
            like = tf.zeros(shape, dtype)  # ResizeBilinearGrad reads only its shape and dtype
            return tf.raw_ops.ResizeBilinearGrad(
                grads=dy, original_image=like, align_corners=False, half_pixel_centers=True
            )

        y = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False, half_pixel_centers=True)
        return y, grad

    return op(x)
