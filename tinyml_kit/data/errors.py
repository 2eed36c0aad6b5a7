"""Errors of ``tinyml_kit.data``: each names the dataset, file or package involved and the fix."""

from tinyml_kit.errors import MissingDependencyError, TinymlKitError


class DatasetError(TinymlKitError):
    """A dataset cannot be loaded or transformed as asked (bad name, argument or content)."""


class DatasetNotFoundError(MissingDependencyError):
    """The package that provides a dataset is not installed or not fetched; the message says how to get it."""


class ChecksumMismatchError(DatasetError):
    """A data file differs from the pinned checksum (corrupt or replaced); the message names the file."""


class ImageFolderError(DatasetError):
    """A user image folder is missing, empty or holds an unreadable image (named in the message)."""
