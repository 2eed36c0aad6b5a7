"""Errors of ``tinyml_kit.tinytl``: each names the layer, method or argument involved and the fix."""

from tinyml_kit.errors import TinymlKitError


class TinyTLError(TinymlKitError):
    """TinyTL was configured or used in a way it does not support."""


class UnknownMethodError(TinyTLError, ValueError):
    """A transfer-learning method name is not one of ``tinytl.METHODS``."""


class UnsupportedArchitectureError(TinyTLError):
    """``prepare`` met a layer or block structure it cannot transform; the message names the layer."""
