"""Measured training memory: allocator peaks, the fit() callback, the fresh-process measurement."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tinyml_kit.tinytl import TrainingMemoryMonitor, prepare
from tinyml_kit.tinytl.errors import TinyTLError
from tinyml_kit.tinytl.measure import (
    compile_for_measurement,
    measure_in_subprocess,
    measure_training_step,
    random_batch,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_tinytl_prepare import mcunet_like


@pytest.fixture(scope="module")
def small_model():
    return compile_for_measurement(prepare(mcunet_like((32, 32, 3)), "lite_residual+bias", 4, norm="batch"))


def test_measure_training_step(small_model):
    x, y = random_batch(small_model, 8)
    before = [w.copy() for w in small_model.get_weights()]
    result = measure_training_step(small_model, x, y, device="CPU:0")
    # small tensors may escape the default oneDNN allocator's statistics (see measure's docstring)
    assert 0 <= result.resident_bytes < result.peak_bytes
    assert result.step_bytes == result.peak_bytes - result.resident_bytes
    for a, b in zip(before, small_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # weights restored
    with pytest.raises(TinyTLError, match="compile"):
        measure_training_step(prepare(mcunet_like((32, 32, 3)), "bias", 4), x, y)


def test_monitor_logs_modelled_and_measured_memory(small_model):
    x, y = random_batch(small_model, 32)
    monitor = TrainingMemoryMonitor(batch_size=8)
    history = small_model.fit(x, y, batch_size=8, epochs=2, callbacks=[monitor], verbose=0)
    logs = history.history
    assert logs["memory_model_mb"][0] == pytest.approx(monitor.modelled["total"] / 1e6)
    assert all(p > s > 0 for p, s in zip(logs["memory_peak_mb"], logs["memory_step_mb"], strict=True))
    with pytest.raises(ValueError, match="batch_size"):
        TrainingMemoryMonitor(batch_size=0)


@pytest.mark.slow
def test_bias_only_needs_a_sixth_of_full_finetuning():
    """The paper's setting (ProxylessNAS-Mobile, 224x224, batch 8), measured in fresh processes."""
    full = measure_in_subprocess("proxylessnas_mobile", "full", image_size=224, batch_size=8)
    bias = measure_in_subprocess("proxylessnas_mobile", "bias", image_size=224, batch_size=8)
    plain = measure_in_subprocess(
        "proxylessnas_mobile", "bias", image_size=224, batch_size=8, memory_lean=False
    )
    assert bias["peak_bytes"] * 6 <= full["peak_bytes"]
    assert bias["peak_bytes"] * 2 <= plain["peak_bytes"]  # the lean gradients make the difference
