"""Where the toolkit's bundled resources and its cache live, installed or run from a checkout."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def _bundled(name: str) -> Path:
    """A folder shipped beside the package: inside it when installed, at the repo root otherwise."""
    installed = PACKAGE_DIR / name
    if installed.is_dir():
        return installed
    checkout = REPO_DIR / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"tinyml-kit's '{name}/' folder is missing (looked in {installed} and {checkout}); "
        "reinstall the package with `pip install tinyml-kit` or from a full checkout."
    )


def firmware_dir() -> Path:
    """The C runtime: kernels, Cortex-M target files and templates."""
    return _bundled("firmware")


def scripts_dir() -> Path:
    """Helper scripts, e.g. ``install-system-deps.sh``."""
    return _bundled("scripts")


def cache_dir() -> Path:
    """The cache root: ``$TINYML_KIT_HOME`` or ``~/.cache/tinyml-kit`` (created on demand)."""
    root = Path(os.environ.get("TINYML_KIT_HOME") or Path.home() / ".cache" / "tinyml-kit")
    root.mkdir(parents=True, exist_ok=True)
    return root
