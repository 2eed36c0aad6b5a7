"""Fixtures of the engine tests."""

from __future__ import annotations

import pytest
from test_engine_kernels_common import KernelLab, shared_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> KernelLab:
    """The kernel lab (C kernels compiled as shared libraries, TFLM references); skips without gcc."""
    return shared_lab(tmp_path_factory)
