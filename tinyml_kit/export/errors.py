"""Errors of the export path (Keras model -> int8 .tflite, QAT bridge)."""

from tinyml_kit.errors import TinymlKitError


class ExportError(TinymlKitError):
    """A model could not be converted, verified or written; the message names the cause and the fix."""


class UnsupportedLayerError(ExportError):
    """The Keras 3 -> tf_keras bridge met layers it cannot map; the message lists them and the options."""
