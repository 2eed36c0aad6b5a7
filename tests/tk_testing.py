"""Helpers shared by the test modules (importable as ``tk_testing``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import shutil

import pytest

# Command-line tools the tests use, and the Debian package providing each.
TOOL_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "ngspice": "ngspice",
    "gcc": "gcc",
}


def require_tool(name: str) -> str:
    """Path of a command-line tool, or skip the test saying which Debian package provides it."""
    found = shutil.which(name)
    if not found:
        pkg = TOOL_PACKAGES.get(name, name)
        pytest.skip(f"{name} not installed (Debian package {pkg}; run scripts/install-system-deps.sh)")
    return found
