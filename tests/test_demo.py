"""`tinyml-kit demo` end to end in reduced configurations (host build; QEMU and QAT are slow-marked)."""

from __future__ import annotations

import json

import pytest
from tk_testing import require_tool

from tinyml_kit import cli
from tinyml_kit.errors import MissingDependencyError


def _fashion_mnist_or_skip() -> None:
    from tinyml_kit.data import sources

    status = sources.get_source("fashion_mnist").status()
    if not status.ok:
        pytest.skip(f"Fashion-MNIST is not available: {status.detail} ({status.fix})")


def _check_summary(summary: dict, test_images: int) -> None:
    acc, agree, mem = summary["accuracy"], summary["agreement"], summary["memory"]
    assert summary["dataset"]["test_images"] == test_images
    # the firmware's int8 predictions equal LiteRT's and TFLM's one by one; its bytes equal TFLM's
    # (LiteRT's softmax may differ from TFLM's by 1-2 LSB, so bytes are compared with TFLM only)
    assert agree["device_vs_litert_mismatches"] == 0 and agree["device_vs_tflm_mismatches"] == 0
    assert agree["raw_outputs_identical_tflm"]
    assert acc["int8_device"] == acc["int8_litert"] == acc["int8_tflm"]
    for value in acc.values():
        assert 0.0 <= value <= 1.0
    assert 0 < mem["lower_bound_bytes"] <= mem["peak_sram_bytes"] <= mem["tflm_like_greedy_plan_bytes"]
    assert mem["peak_sram_bytes"] < mem["tflm_arena_bytes"]
    assert mem["flash_bytes"] >= mem["model_constants_bytes"] > 0


def test_demo_host_reduced(tmp_path, capsys):
    require_tool("gcc")
    _fashion_mnist_or_skip()
    out = tmp_path / "demo"
    code = cli.main(["demo", "--train-size", "300", "--epochs", "1", "--test-images", "20",
                     "--target", "host", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = json.loads((out / "summary.json").read_text())
    _check_summary(summary, 20)
    assert summary["config"]["target"] == "host" and summary["performance"]["host_ns_per_inference"] > 0
    assert summary["history"]["peak_sram_bytes"] == [summary["memory"]["peak_sram_bytes"]]
    for name in ("model_int8.tflite", "model_float.keras", "memory_per_op.png", "firmware/manifest.json"):
        assert (out / name).is_file(), name
    assert not (out / "training").exists()
    assert "Results saved in" in printed and "int8 accuracy (firmware, host build)" in printed


def test_demo_names_what_is_missing(monkeypatch, tmp_path, capsys):
    import shutil

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "qemu-system-arm" else real_which(name))
    from tinyml_kit import demo

    if real_which("arm-none-eabi-gcc") is None:
        with pytest.raises(MissingDependencyError, match="arm-none-eabi-gcc"):
            demo.check_prerequisites("cortex-m4")
    else:
        with pytest.raises(MissingDependencyError, match=r"qemu-system-arm.*--target host"):
            demo.check_prerequisites("cortex-m4")
    code = cli.main(["demo", "--epochs", "0", "--out", str(tmp_path)])
    assert code == 2 and "--epochs must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.qemu
def test_demo_cortex_m4_in_qemu(tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    _fashion_mnist_or_skip()
    from tinyml_kit.demo import DemoConfig, run_demo

    summary = run_demo(DemoConfig(epochs=1, train_size=600, test_images=60, target="cortex-m4",
                                  out=str(tmp_path / "demo")))
    _check_summary(summary, 60)
    assert summary["performance"]["instructions_per_inference"] > summary["performance"]["macs_per_inference"]


@pytest.mark.slow
def test_qat_is_at_least_as_accurate_as_ptq_on_the_demo_task(tmp_path):
    """Measured: int8 accuracy of the demo model, post-training quantised, vs one more epoch with QAT.

    Also recorded: the same extra epoch in float, then PTQ (the fair baseline; on this small CNN PTQ
    loses almost nothing, so QAT and that baseline are within noise of each other).
    """
    require_tool("gcc")
    _fashion_mnist_or_skip()
    from tinyml_kit.demo import DemoConfig, run_demo

    summary = run_demo(DemoConfig(epochs=3, train_size=3000, test_images=500, target="host", qat_epochs=1,
                                  out=str(tmp_path / "demo")))
    acc = summary["accuracy"]
    print(f"float {acc['float_keras']:.3f}  PTQ {acc['int8_litert']:.3f}  +1 epoch: QAT "
          f"{acc['int8_litert_qat']:.3f}, float+PTQ {acc['int8_litert_ptq_same_epochs']:.3f}")
    assert acc["int8_litert_qat"] >= acc["int8_litert"]
    assert acc["int8_litert_qat"] >= acc["int8_litert_ptq_same_epochs"] - 0.02  # within noise of the baseline
