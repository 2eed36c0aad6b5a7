"""Building blocks shared by the zoo's mobile CNNs, with layer names later transforms rely on.

Every inverted-residual block ``i`` (0-based) is made of layers named

    block{i}_expand, block{i}_expand_bn, block{i}_expand_relu   (absent when expand ratio is 1)
    block{i}_dw,     block{i}_dw_bn,     block{i}_dw_relu
    block{i}_project, block{i}_project_bn
    block{i}_add                                                 (only with an identity shortcut)

(``block{i}_dw_pad`` precedes ``block{i}_dw`` with ``padding="symmetric"`` and stride 2.)
:func:`inverted_residual_blocks` finds them again in a built model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras

from tinyml_kit.zoo.errors import ZooError

PADDINGS = ("same", "symmetric")
_BLOCK_LAYER = re.compile(r"^block(\d+)_(expand|dw|project|add)$")


@dataclass(frozen=True)
class BatchNormConfig:
    """BatchNorm hyper-parameters in Keras terms (Keras momentum = 1 - PyTorch momentum)."""

    momentum: float = 0.99
    epsilon: float = 1e-3


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10 % of it."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ZooError(f"padding must be one of {PADDINGS}, got {padding!r}")


def _spatial(x: keras.KerasTensor, kernel: int, stride: int, padding: str, name: str) -> tuple:
    """Keras ``padding`` argument, inserting an explicit symmetric pad layer when asked.

    ``"same"`` is TensorFlow SAME (for stride 2 the extra row/column goes bottom/right);
    ``"symmetric"`` pads ``kernel // 2`` on every side, as PyTorch ``Conv2d(padding=k // 2)`` does.
    Both give the same output size for odd kernels; they differ in which pixels are seen.
    """
    if padding == "same" or stride == 1 or kernel == 1:
        return x, "same"
    return keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x), "valid"


def conv_bn_act(
    x: keras.KerasTensor,
    filters: int,
    kernel: int,
    stride: int,
    name: str,
    bn: BatchNormConfig,
    activation: bool = True,
    padding: str = "same",
) -> keras.KerasTensor:
    """Conv (no bias) -> BN -> ReLU6, layers named ``name``, ``name_bn``, ``name_relu``."""
    x, pad = _spatial(x, kernel, stride, padding, name)
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=pad, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=bn.momentum, epsilon=bn.epsilon, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


def inverted_residual(
    x: keras.KerasTensor,
    index: int,
    out_channels: int,
    kernel: int,
    stride: int,
    expand_ratio: float,
    residual: bool,
    bn: BatchNormConfig,
    padding: str = "same",
) -> keras.KerasTensor:
    """MobileNetV2 block: [1x1 expand -> BN -> ReLU6] -> kxk depthwise -> BN -> ReLU6 -> 1x1 project -> BN.

    The expand conv is skipped when ``expand_ratio == 1``; ``residual`` adds the block input
    (requires stride 1 and equal channel counts). Expanded width is ``round(in * expand_ratio)``.
    """
    in_channels = int(x.shape[-1])
    if residual and (stride != 1 or in_channels != out_channels):
        raise ZooError(
            f"block {index}: an identity shortcut needs stride 1 and in == out channels, "
            f"got stride {stride}, {in_channels} -> {out_channels} channels"
        )
    prefix = f"block{index}"
    inputs = x
    if expand_ratio != 1:
        x = conv_bn_act(x, round(in_channels * expand_ratio), 1, 1, f"{prefix}_expand", bn)
    x, pad = _spatial(x, kernel, stride, padding, f"{prefix}_dw")
    x = keras.layers.DepthwiseConv2D(
        kernel, strides=stride, padding=pad, use_bias=False, name=f"{prefix}_dw"
    )(x)
    x = keras.layers.BatchNormalization(momentum=bn.momentum, epsilon=bn.epsilon, name=f"{prefix}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
    x = conv_bn_act(x, out_channels, 1, 1, f"{prefix}_project", bn, activation=False)
    if residual:
        x = keras.layers.Add(name=f"{prefix}_add")([inputs, x])
    return x


@dataclass(frozen=True)
class InvertedResidualLayers:
    """Names of one block's main layers in a built model (``expand``/``add`` may be ``None``)."""

    index: int
    expand: str | None
    depthwise: str
    project: str
    add: str | None


def inverted_residual_blocks(model: keras.Model) -> list[InvertedResidualLayers]:
    """The inverted-residual blocks of a zoo model (EfficientNet-Lite0, ProxylessNAS), in order."""
    found: dict[int, dict[str, str]] = {}
    for layer in model.layers:
        match = _BLOCK_LAYER.match(layer.name)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = layer.name
    blocks = []
    for index in sorted(found):
        parts = found[index]
        if "dw" not in parts or "project" not in parts:
            raise ZooError(f"model '{model.name}': block {index} lacks a depthwise or project layer")
        blocks.append(
            InvertedResidualLayers(
                index, parts.get("expand"), parts["dw"], parts["project"], parts.get("add")
            )
        )
    return blocks
