"""Exceptions users see. Each message names the problem (file, op, index, valid choices) and a fix."""


class TinymlKitError(Exception):
    """Base of every error tinyml-kit raises on purpose; the CLI prints it as one line."""


class MissingDependencyError(TinymlKitError):
    """A system tool, Python package or data package is not installed; the message says how to fix it."""
