"""Gradient functions that keep no activation alive for frozen layers (TensorFlow backend).

TinyTL's observation (Cai et al., NeurIPS 2020, section 3.1): for a layer ``y = x W + b`` whose
weight ``W`` is frozen, the backward pass needs ``dL/dx = dL/dy W^T`` and ``dL/db = sum dL/dy``,
neither of which reads ``x``; a ReLU needs only the sign pattern of its input. Framework autodiff
still records ``x`` because the generic gradient of a convolution also computes ``dL/dW``, and
ReLU's gradient reads its float32 output. The functions here are ``tf.custom_gradient`` versions
whose backward closures capture only weights, static shapes and packed 1-bit masks:

* :func:`frozen_conv2d`, :func:`frozen_depthwise_conv2d`, :func:`frozen_matmul`: the input is not
  kept; an optional bias and an optional fused ReLU / ReLU6 (``activation``) run inside, the bias
  gradient being the summed (masked) output gradient.
* :func:`frozen_affine`: a normalisation with frozen statistics and frozen scale is
  ``x * scale + shift``; ``dL/dx = dL/dy * scale``; ``dL/dshift`` is summed.
* :func:`masked_relu`: ReLU / ReLU6 keeping a 1-bit mask (``0 < x < max``), 8 per byte.
* :func:`resize_bilinear`: the gradient of bilinear resizing needs only the input's shape.

A graph executor frees a tensor when its last consumer has run, but picks freely among ready ops.
Control dependencies therefore pin the order: outputs wait for what backward needs (so inputs die
at once), masks are unpacked only when the output gradient exists, and input gradients wait for
the bias gradient (so ``dy`` dies at once). Gradients equal TensorFlow's own to float32 rounding:
the backward passes call the same kernels (``Conv2DBackpropInput``,
``DepthwiseConv2dNativeBackpropInput``, ``ResizeBilinearGrad``...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

_BIT_WEIGHTS = (1, 2, 4, 8, 16, 32, 64, 128)
ACTIVATIONS = {None: None, "relu": None, "relu6": 6.0}  # name -> max value (relu: unbounded)


def _sum_to_channels(dy: tf.Tensor) -> tf.Tensor:
    """Sum a gradient over every axis but the last (the gradient of a broadcast per-channel add)."""
    return tf.reduce_sum(dy, axis=tf.range(tf.rank(dy) - 1))


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


class _Mask:
    """ReLU / ReLU6 forward that keeps a packed mask, and the matching gradient gate."""

    def __init__(self, x: tf.Tensor, max_value: float | None) -> None:
        top = None if max_value is None else tf.cast(max_value, x.dtype)
        self.shape = tf.shape(x)
        self.packed = pack_bits(x > 0 if top is None else tf.logical_and(x > 0, x < top))
        # the output waits for the mask, so ``x`` can be freed right after this op
        with tf.control_dependencies([self.packed, self.shape]):
            self.output = tf.nn.relu(x) if top is None else tf.minimum(tf.nn.relu(x), top)

    def gate(self, dy: tf.Tensor) -> tf.Tensor:
        # Unpack only once ``dy`` exists (else every byte mask may be materialised early); a
        # scalar zero, as ``zeros_like(dy)`` would be constant-folded into a resident buffer.
        with tf.control_dependencies([dy]):
            mask = unpack_bits(self.packed, self.shape)
        return tf.where(mask, dy, tf.constant(0, dy.dtype))


def _frozen_linear(
    forward: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    backward_x: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor],
    x: tf.Tensor,
    weight: tf.Tensor,
    bias: tf.Tensor | None,
    activation: str | None,
) -> tf.Tensor:
    """``act(forward(x, weight) [+ bias])`` with a custom gradient that keeps neither ``x`` nor ``y``."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"Expected `activation` in {tuple(ACTIVATIONS)}. Received: activation={activation!r}"
        )
    shape = tf.shape(x)
    has_bias = bias is not None

    @tf.custom_gradient
    def op(*args: tf.Tensor) -> tuple:
        x, weight = args[0], args[1]
        with tf.control_dependencies([shape]):  # ``x`` can be freed right after the product
            y = forward(x, weight)
        if has_bias:
            y = tf.nn.bias_add(y, args[2])
        mask = _Mask(y, ACTIVATIONS[activation]) if activation else None
        if mask is not None:
            y = mask.output

        def grad(dy: tf.Tensor) -> list:
            if mask is not None:
                dy = mask.gate(dy)
            extra, after = [], []
            if has_bias:
                dbias = _sum_to_channels(dy)
                extra, after = [dbias], [dbias]
            with tf.control_dependencies(after):  # ``dy`` dies as soon as ``dx`` exists
                dx = backward_x(shape, weight, dy)
            return [dx, None, *extra]

        return y, grad

    return op(x, weight, *([bias] if has_bias else []))


def frozen_conv2d(
    x: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor | None = None,
    strides: Sequence[int] = (1, 1),
    padding: str = "VALID",
    dilations: Sequence[int] = (1, 1),
    activation: str | None = None,
) -> tf.Tensor:
    """NHWC ``act(conv2d(x, kernel) + bias)`` with a frozen kernel; ``x`` is not kept for backward."""
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

    return _frozen_linear(forward, backward_x, x, kernel, bias, activation)


def frozen_depthwise_conv2d(
    x: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor | None = None,
    strides: Sequence[int] = (1, 1),
    padding: str = "VALID",
    activation: str | None = None,
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

    return _frozen_linear(forward, backward_x, x, kernel, bias, activation)


def frozen_matmul(
    x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | None = None, activation: str | None = None
) -> tf.Tensor:
    """``act(x @ kernel + bias)`` for 2-D ``x`` with a frozen kernel; ``x`` is not kept."""

    def forward(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, kernel)

    def backward_x(shape: tf.Tensor, kernel: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
        return tf.matmul(dy, kernel, transpose_b=True)

    return _frozen_linear(forward, backward_x, x, kernel, bias, activation)


def frozen_affine(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """``x * scale + shift`` (per last-axis channel) with a frozen ``scale``; ``x`` is not kept.

    This is a normalisation layer with frozen statistics and frozen gamma; the gradient flows to
    ``shift`` (so to beta), never to ``scale``.
    """

    @tf.custom_gradient
    def op(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) -> tuple:
        def grad(dy: tf.Tensor) -> tuple:
            dshift = _sum_to_channels(dy)
            with tf.control_dependencies([dshift]):  # ``dy`` dies as soon as ``dx`` exists
                return dy * scale, None, dshift

        return x * scale + shift, grad

    return op(x, scale, shift)


def masked_relu(x: tf.Tensor, max_value: float | None = None) -> tf.Tensor:
    """ReLU (``max_value=None``) or clipped ReLU keeping a packed 1-bit mask for backward.

    The gradient passes where ``0 < x`` (and ``x < max_value``), as TensorFlow's ``ReluGrad`` /
    ``Relu6Grad`` do.
    """

    @tf.custom_gradient
    def op(x: tf.Tensor) -> tuple:
        mask = _Mask(x, max_value)
        return mask.output, mask.gate

    return op(x)


def resize_bilinear(x: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Bilinear resize with half-pixel centres (PyTorch ``align_corners=False``); ``x`` is not kept."""
    size = tf.constant(list(size), tf.int32)

    @tf.custom_gradient
    def op(x: tf.Tensor) -> tuple:
        shape, dtype = tf.shape(x), x.dtype  # the closure below must not capture ``x`` itself
        with tf.control_dependencies([shape]):
            y = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False, half_pixel_centers=True)

        def grad(dy: tf.Tensor) -> tf.Tensor:
            with tf.control_dependencies([dy]):  # not before it is needed
                like = tf.zeros(shape, dtype)  # ResizeBilinearGrad reads only its shape and dtype
            return tf.raw_ops.ResizeBilinearGrad(
                grads=dy, original_image=like, align_corners=False, half_pixel_centers=True
            )

        return y, grad

    return op(x)
