"""ProxylessNAS-Mobile (Cai, Zhu & Han, ICLR 2019) in Keras 3, built from its published block list.

The block list ships as ``resources/proxylessnas_mobile.json``; no pretrained weights exist
offline, so the model is randomly initialised (TinyTL uses it as the backbone of its Table 2).
"""

from __future__ import annotations

from typing import Any

import keras

from tinyml_kit.zoo._resources import load_json_resource
from tinyml_kit.zoo.blocks import (
    BatchNormConfig,
    check_padding,
    conv_bn_act,
    inverted_residual,
    make_divisible,
)
from tinyml_kit.zoo.errors import ZooError

CONFIG_RESOURCE = "proxylessnas_mobile.json"


def proxylessnas_mobile_config() -> dict[str, Any]:
    """The published ProxylessNAS-Mobile network description (first conv, 20 blocks, head)."""
    return load_json_resource(CONFIG_RESOURCE)


def _scaled(channels: int, width_mult: float) -> int:
    return make_divisible(channels * width_mult, 8)


def proxylessnas_mobile(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 1000,
    width_mult: float = 1.0,
    include_top: bool = True,
    dropout: float = 0.0,
    padding: str = "same",
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """ProxylessNAS-Mobile with random initialisation (4.08 M parameters with 1000 classes).

    Args:
        input_shape: ``(height, width, channels)``, height and width >= 32.
        classes: outputs of the ``classifier`` Dense layer (``include_top`` only).
        width_mult: channel multiplier; stem and block widths become multiples of 8
            (``make_divisible``), the 1280-wide feature mix is only ever widened (MobileNetV2 rule).
        include_top: add global average pooling, optional dropout and the classifier.
        dropout: dropout rate before the classifier.
        padding: ``"same"`` (TensorFlow SAME, no extra ops) or ``"symmetric"`` (explicit
            ``k // 2`` zero padding before stride-2 convs, exactly as the PyTorch original).
        classifier_activation: activation of the classifier (``None`` gives logits).

    Every conv has no bias and is followed by BatchNorm (PyTorch momentum 0.1 = Keras 0.9,
    epsilon 1e-3); ReLU6 follows the stem, expand, depthwise and feature-mix convs. Blocks are
    named ``block{i}_expand`` / ``block{i}_dw`` / ``block{i}_project`` / ``block{i}_add`` (see
    :func:`tinyml_kit.zoo.blocks.inverted_residual_blocks`).
    """
    if len(input_shape) != 3 or min(input_shape[:2]) < 32:
        raise ZooError(
            f"input_shape must be (height, width, channels) with height, width >= 32, got {input_shape}"
        )
    if not 0.0 < width_mult <= 4.0:
        raise ZooError(f"width_mult must be in (0, 4], got {width_mult}")
    if classes < 1:
        raise ZooError(f"classes must be positive, got {classes}")
    if not 0.0 <= dropout < 1.0:
        raise ZooError(f"dropout must be in [0, 1), got {dropout}")
    check_padding(padding)
    config = proxylessnas_mobile_config()
    bn = BatchNormConfig(momentum=1.0 - config["bn"]["momentum"], epsilon=config["bn"]["eps"])

    inputs = keras.Input(shape=input_shape, name="image")
    first = config["first_conv"]
    x = conv_bn_act(
        inputs,
        _scaled(first["out"], width_mult),
        first["kernel"],
        first["stride"],
        "stem_conv",
        bn,
        padding=padding,
    )
    for index, block in enumerate(config["blocks"]):
        x = inverted_residual(
            x,
            index,
            _scaled(block["out"], width_mult),
            block["kernel"],
            block["stride"],
            block["expand"],
            block["residual"],
            bn,
            padding=padding,
        )
    mix = config["feature_mix"]
    mix_channels = _scaled(mix["out"], width_mult) if width_mult > 1.0 else mix["out"]
    x = conv_bn_act(x, mix_channels, mix["kernel"], 1, "feature_mix", bn)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name="top_dropout")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="classifier")(x)
    suffix = "" if width_mult == 1.0 else f"_w{width_mult:g}"
    return keras.Model(inputs, x, name=f"proxylessnas_mobile{suffix}")
