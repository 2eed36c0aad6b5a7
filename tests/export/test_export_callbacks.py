"""ExportFirmware and MCUBudget inside real `fit` calls (host target: gcc builds the firmware)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tk_testing import require_tool  # noqa: E402

from tinyml_kit.callbacks import BudgetWarning, ExportFirmware, MCUBudget, check_engine  # noqa: E402
from tinyml_kit.errors import MissingDependencyError  # noqa: E402


def _data(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (n, 12, 12, 1)).astype(np.float32), rng.integers(0, 3, n)


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(6, 3, strides=2, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(6.0),
        keras.layers.DepthwiseConv2D(3, padding="same"),
        keras.layers.ReLU(6.0),
        keras.layers.Conv2D(8, 1, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def host_gcc() -> None:
    require_tool("gcc")


def test_export_firmware_logs_real_figures_into_history(tmp_path, host_gcc):
    x, y = _data()
    model = _model()
    exporter = ExportFirmware(tmp_path, x[:64], target="host", verbose=0)
    budget = MCUBudget(verbose=0)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[budget, exporter])
    # exported once, at the last epoch: History has one value, from that epoch's logs
    assert len(exporter.results) == 1 and exporter.results[0].epoch == 2
    project = exporter.project
    assert history.history["peak_sram_bytes"] == [project.peak_sram_bytes]
    assert history.history["flash_bytes"] == [project.flash_bytes]
    assert history.history["est_sram_bytes"] == [budget.estimate.sram_bytes] * 2
    manifest = json.loads((tmp_path / "epoch_002" / "firmware" / "manifest.json").read_text())
    assert manifest["peak_sram_bytes"] == project.peak_sram_bytes
    assert (tmp_path / "epoch_002" / "model_int8.tflite").read_bytes()[4:8] == b"TFL3"
    # MCUBudget: computed once (architecture unchanged), within the stated factor of the real plan:
    # the engine's in-place plan needs 0.5x-1.1x of the estimate (no in-place ops, no scratch in it)
    assert 0.5 * budget.estimate.sram_bytes <= project.peak_sram_bytes <= 1.1 * budget.estimate.sram_bytes
    # flash (host target = model constants): int8 weights, int32 biases and requantisation words
    # The estimate counts int8 weights + int32 biases; the engine's constants also hold per-channel
    # requantisation tables and kernel-packed weights, so the estimate is a lower bound of the same order.
    assert 0.6 * project.flash_bytes <= budget.estimate.flash_bytes <= project.flash_bytes
    assert budget.seconds < 5.0


def test_every_n_epochs_and_budget_warning(tmp_path, host_gcc):
    x, y = _data()
    exporter = ExportFirmware(tmp_path, x[:32], target="host", sram_budget=64, every_n_epochs=1, verbose=0)
    expected = r"peak_sram_bytes = [\d,]+ B > budget 64 B \(training continues\)"
    with pytest.warns(BudgetWarning, match=expected):
        history = _model().fit(x, y, epochs=2, batch_size=48, verbose=0, callbacks=[exporter])
    assert len(history.history["loss"]) == 2  # "warn" keeps training
    assert [r.epoch for r in exporter.results] == [1, 2]
    assert len(history.history["peak_sram_bytes"]) == 2
    assert all(r.over_budget for r in exporter.results)


def test_over_budget_stop_ends_training(tmp_path, host_gcc):
    x, y = _data()
    exporter = ExportFirmware(tmp_path, x[:32], target="host", flash_budget=100, every_n_epochs=1,
                              on_over_budget="stop", verbose=0)
    with pytest.warns(BudgetWarning, match=r"flash_bytes = [\d,]+ B > budget 100 B \(stopping training\)"):
        history = _model().fit(x, y, epochs=4, batch_size=48, verbose=0, callbacks=[exporter])
    assert len(history.history["loss"]) == 1
    assert len(exporter.results) == 1  # the stopped epoch's weights were exported already


def test_early_stopped_training_still_exports_its_final_weights(tmp_path, host_gcc):
    x, y = _data()
    exporter = ExportFirmware(tmp_path, x[:32], target="host", verbose=0)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=100.0)
    history = _model().fit(x, y, epochs=5, batch_size=48, verbose=0, callbacks=[stopper, exporter])
    assert len(history.history["loss"]) == 2
    assert [r.epoch for r in exporter.results] == [2]  # exported at train end, not at epoch 5
    assert "peak_sram_bytes" not in history.history


def test_mcu_budget_warns_or_stops_on_the_estimate():
    x, y = _data(48)
    with pytest.warns(BudgetWarning, match="est_sram_bytes .*training continues"):
        history = _model().fit(x, y, epochs=2, verbose=0, callbacks=[MCUBudget(sram_budget=100, verbose=0)])
    assert len(history.history["est_sram_bytes"]) == 2
    with pytest.warns(BudgetWarning, match="est_flash_bytes .*stopping training"):
        history = _model().fit(x, y, epochs=3, verbose=0,
                               callbacks=[MCUBudget(flash_budget=10, on_over_budget="stop", verbose=0)])
    assert len(history.history["loss"]) == 1
    roomy = MCUBudget(sram_budget=10**6, flash_budget=10**6, verbose=0)
    roomy.set_model(_model())
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetWarning)
        roomy.on_train_begin()
        roomy.on_epoch_end(0, logs := {})
    est = roomy.estimate
    assert logs == {"est_sram_bytes": est.sram_bytes, "est_flash_bytes": est.flash_bytes}


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="target"):
        ExportFirmware("x", np.zeros((1, 2)), target="esp32")
    with pytest.raises(ValueError, match="on_over_budget"):
        MCUBudget(on_over_budget="explode")
    with pytest.raises(ValueError, match="sram_budget"):
        MCUBudget(sram_budget=0)
    with pytest.raises(ValueError, match="every_n_epochs"):
        ExportFirmware("x", np.zeros((1, 2)), every_n_epochs=0)
    with pytest.raises(ValueError, match="representative_data"):
        ExportFirmware("x", None)


def test_missing_compiler_is_reported_with_the_fix(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"arm-none-eabi-gcc.*tinyml-kit doctor"):
        check_engine("cortex-m4")


@pytest.mark.slow
def test_export_firmware_exports_the_qat_model_inside_qat_fit(tmp_path, host_gcc):
    from tinyml_kit.export import quantize_aware
    from tinyml_kit.export.litert import load_interpreter

    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    qat = quantize_aware(model)
    exporter = ExportFirmware(tmp_path, x[:32], target="host", verbose=0)
    history = qat.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[exporter])
    assert history.history["peak_sram_bytes"] == [exporter.project.peak_sram_bytes]
    ops = {d["op_name"] for d in load_interpreter(exporter.results[0].tflite_path)._get_ops_details()}
    assert "CONV_2D" in ops
    out = exporter.project.run(np.zeros((12, 12, 1), np.int8))
    assert out[0].shape == (1, 3)
