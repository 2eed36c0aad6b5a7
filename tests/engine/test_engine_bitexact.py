"""The bit-exact sweep: every modelgen case, compiled by the engine, equals the reference (TFLM, else LiteRT).

Default tier: the single-op cases and the shared TFLM models on the host target. Slow tier: the whole
networks on host, and everything on cortex-m4 under QEMU. A case whose op the engine does not support
fails here with the engine's UnsupportedOpError message; nothing is skipped for that reason.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from tk_testing import require_tool

from tinyml_kit import engine
from tinyml_kit.engine import bench
from tinyml_kit.engine import modelgen as mg
from tinyml_kit.engine.errors import EngineError, UnsupportedOpError

N_INPUTS = 20
SHARED_MODELS = ("hello_world_int8.tflite", "micro_speech_quantized.tflite", "person_detect.tflite")


def _assert_bit_exact(path: Path, target: str, out_dir: Path) -> None:
    require_tool("gcc")
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        require_tool("qemu-system-arm")
    samples = mg.random_inputs(path, N_INPUTS, seed=0)
    project = engine.compile(path, out_dir, target=target)
    ours = project.run_many(samples)
    reference, reference_name = bench.reference_run(path, samples)
    exact, mismatched, worst = bench.compare_outputs(ours, reference)
    assert exact, (f"{path.name} on {target}: {mismatched}/{N_INPUTS} samples differ from {reference_name} "
                   f"(largest |difference| {worst})")


@pytest.mark.parametrize("name", mg.op_cases())
def test_op_case_is_bit_exact_on_host(name: str, tmp_path: Path) -> None:
    _assert_bit_exact(mg.generate(name), "host", tmp_path / name)


@pytest.mark.parametrize("model", SHARED_MODELS)
def test_shared_model_is_bit_exact_on_host(model: str, shared_models: Path, tmp_path: Path) -> None:
    _assert_bit_exact(shared_models / model, "host", tmp_path / "project")


@pytest.mark.slow
@pytest.mark.parametrize("name", mg.net_cases())
def test_network_is_bit_exact_on_host(name: str, tmp_path: Path) -> None:
    _assert_bit_exact(mg.generate(name), "host", tmp_path / name)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", mg.op_cases() + mg.net_cases())
def test_case_is_bit_exact_on_cortex_m4(name: str, tmp_path: Path) -> None:
    _assert_bit_exact(mg.generate(name), "cortex-m4", tmp_path / name)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("model", SHARED_MODELS)
def test_shared_model_is_bit_exact_on_cortex_m4(model: str, shared_models: Path, tmp_path: Path) -> None:
    _assert_bit_exact(shared_models / model, "cortex-m4", tmp_path / "project")


@pytest.mark.parametrize("name", mg.unsupported_cases())
def test_float_and_hybrid_models_are_refused_clearly(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOpError, match=r"(?s)op #\d+ \(FULLY_CONNECTED\).*int8"):
        engine.compile(mg.generate(name), tmp_path / name)


def test_model_that_aborts_the_references_gives_an_engine_answer(tmp_path: Path) -> None:
    """TFLM and LiteRT abort on a SOFTMAX with a ~1e-9 input scale; the engine must compile it or refuse it
    with an EngineError, never fail with an internal exception."""
    path = mg.generate("softmax_tiny_scale")
    with contextlib.suppress(EngineError):
        engine.compile(path, tmp_path / "project")
