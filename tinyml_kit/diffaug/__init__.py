"""DiffAugment (Zhao et al., NeurIPS 2020): data-efficient GAN training for Keras 3.

>>> from tinyml_kit.diffaug import DiffAugment, DataEfficientGAN, AdaptiveAugment, models
>>> g, d = models.build_pair("dcgan", (28, 28, 1))                          # doctest: +SKIP
>>> gan = DataEfficientGAN(g, d, augment=DiffAugment("color,translation,cutout"))  # doctest: +SKIP

Names resolve lazily so that importing ``tinyml_kit.diffaug.cli`` (for ``tinyml-kit --help``) does not
import Keras or TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyml_kit._lazy import lazy_attributes

if TYPE_CHECKING:
    from tinyml_kit.diffaug.callbacks import AdaptiveAugment, FIDMonitor, GANMonitor, OverfitProbe
    from tinyml_kit.diffaug.errors import DiffAugError, FeatureExtractorError, PolicyError
    from tinyml_kit.diffaug.features import (
        FeatureExtractor,
        ReferenceFeatures,
        classifier_extractor,
        inception_extractor,
        reference_features,
        score_images,
    )
    from tinyml_kit.diffaug.gan import DataEfficientGAN
    from tinyml_kit.diffaug.grid import save_image_grid
    from tinyml_kit.diffaug.layer import DiffAugment
    from tinyml_kit.diffaug.metrics import fid, frechet_distance, kid
    from tinyml_kit.diffaug.policies import (
        available_policies,
        diff_augment,
        register_policy,
        unregister_policy,
    )

_EXPORTS = {
    "AdaptiveAugment": "callbacks",
    "FIDMonitor": "callbacks",
    "GANMonitor": "callbacks",
    "OverfitProbe": "callbacks",
    "DiffAugError": "errors",
    "FeatureExtractorError": "errors",
    "PolicyError": "errors",
    "FeatureExtractor": "features",
    "ReferenceFeatures": "features",
    "classifier_extractor": "features",
    "inception_extractor": "features",
    "reference_features": "features",
    "score_images": "features",
    "DataEfficientGAN": "gan",
    "save_image_grid": "grid",
    "DiffAugment": "layer",
    "fid": "metrics",
    "frechet_distance": "metrics",
    "kid": "metrics",
    "available_policies": "policies",
    "diff_augment": "policies",
    "register_policy": "policies",
    "unregister_policy": "policies",
}
_SUBMODULES = ("models", "policies", "metrics", "features", "callbacks", "gan", "layer", "grid", "errors")

__all__ = [
    "AdaptiveAugment",
    "DataEfficientGAN",
    "DiffAugError",
    "DiffAugment",
    "FIDMonitor",
    "FeatureExtractor",
    "FeatureExtractorError",
    "GANMonitor",
    "OverfitProbe",
    "PolicyError",
    "ReferenceFeatures",
    "available_policies",
    "classifier_extractor",
    "diff_augment",
    "fid",
    "frechet_distance",
    "inception_extractor",
    "kid",
    "reference_features",
    "register_policy",
    "save_image_grid",
    "score_images",
    "unregister_policy",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS, _SUBMODULES)
