"""File helpers: atomic writes (re-exported from ``tinyml_kit._atomic``), quiet native stderr."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

from tinyml_kit._atomic import write_bytes as atomic_write_bytes
from tinyml_kit._atomic import write_text as atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text", "captured_native_stderr"]


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Send file descriptor 2 to a temp file while the block runs (silences C++ converter logs).

    Yields a list that holds the captured text once the block exits, for error messages.
    """
    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", errors="replace"))
