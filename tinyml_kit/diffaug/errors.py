"""Errors of ``tinyml_kit.diffaug``: each names the argument, value or file involved and the fix."""

from tinyml_kit.errors import TinymlKitError


class DiffAugError(TinymlKitError):
    """A DiffAugment component was configured or used in a way it does not support."""


class PolicyError(DiffAugError, ValueError):
    """An augmentation policy names an unknown transform or cannot be registered (valid names listed)."""


class FeatureExtractorError(DiffAugError):
    """A FID/KID feature extractor cannot be built: missing weights file or unsupported dataset."""
