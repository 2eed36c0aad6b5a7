"""Engine errors: every one names the file, op (type and index) or tensor involved and what to do."""

from tinyml_kit.errors import TinymlKitError


class EngineError(TinymlKitError):
    """The engine cannot read, compile, build or run a model; the message says why and what to do."""


class UnsupportedOpError(EngineError):
    """The model uses an op, dtype or option the engine does not implement (named in the message)."""


class BuildError(EngineError):
    """The generated C project failed to compile or link; the message holds the compiler output."""


class RunError(EngineError):
    """The built firmware failed at run time (host process or QEMU); the message holds its output."""
