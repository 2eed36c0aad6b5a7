"""Matplotlib for the toolkit's plots: the headless backend, a clear error without matplotlib, and an
atomic save that always closes the figure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tinyml_kit._atomic import save_figure
from tinyml_kit.errors import MissingDependencyError


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: plots are optional)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the toolkit's extras
        raise MissingDependencyError("plotting needs matplotlib; install it with `pip install matplotlib`.") \
            from exc
    return plt


def save_and_close(fig: Any, path: str | os.PathLike) -> Path:
    """``fig`` saved atomically to ``path`` (format from its suffix), then closed; returns the path."""
    try:
        return save_figure(fig, path)
    finally:
        pyplot().close(fig)
