"""The reference runners: TFLM (arena figures, outputs, crash isolation) and LiteRT, and the fallback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tinyml_kit.engine import bench, litert, tflm
from tinyml_kit.engine import modelgen as mg
from tinyml_kit.engine.errors import EngineError

# TFLM's RecordingMicroAllocator totals for the pip package's host build (../shared/models/README.md).
EXPECTED_ARENA = {
    "person_detect.tflite": 85_264,
    "micro_speech_quantized.tflite": 7_584,
    "hello_world_int8.tflite": 1_504,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ARENA))
def test_arena_bytes_of_reference_models(shared_models: Path, name: str) -> None:
    assert tflm.arena_bytes(shared_models / name) == EXPECTED_ARENA[name]


def _bmp_as_int8(path: Path) -> np.ndarray:
    """A 96x96 8-bit BMP, rows top-down, bytes reinterpreted as int8 (how TFLM's example feeds them)."""
    data = path.read_bytes()
    offset = int.from_bytes(data[10:14], "little")
    height = int.from_bytes(data[22:26], "little", signed=True)
    image = np.frombuffer(data, np.uint8, count=96 * 96, offset=offset).reshape(96, 96)
    if height > 0:  # stored bottom-up
        image = image[::-1]
    return np.ascontiguousarray(image).view(np.int8).reshape(1, 96, 96, 1)


def test_person_detect_classifies_the_example_images(shared_models: Path) -> None:
    person = _bmp_as_int8(shared_models / "person.bmp")
    no_person = _bmp_as_int8(shared_models / "no_person.bmp")
    out = tflm.run(shared_models / "person_detect.tflite", [person, no_person])  # one worker, 2 samples
    assert len(out) == 2 and out[0].shape == (1, 2) and out[0].dtype == np.int8
    person_idx, not_person_idx = 1, 0  # TFLM example's kPersonIndex / kNotAPersonIndex
    assert out[0][0, person_idx] > out[0][0, not_person_idx]
    assert out[1][0, not_person_idx] > out[1][0, person_idx]


def test_hello_world_tflm_and_litert_approximate_sine(shared_models: Path) -> None:
    path = shared_models / "hello_world_int8.tflite"
    (spec_in,), (spec_out,) = mg.io_specs(path)
    xs = np.linspace(0.0, 2 * np.pi, 25)
    q = np.clip(np.round(xs / spec_in.scale) + spec_in.zero_point, -128, 127).astype(np.int8)
    batch = q.reshape(-1, 1, 1)  # a batch of 25 samples of shape (1, 1)
    results = {}
    for name, runner in (("tflm", tflm), ("litert", litert)):
        out = runner.run(path, batch)
        assert len(out) == 25 and all(o.shape == (1, 1) and o.dtype == np.int8 for o in out)
        results[name] = np.array([o.item() for o in out])
        real = (results[name] - spec_out.zero_point) * spec_out.scale
        assert np.max(np.abs(real - np.sin(xs))) < 0.15, name
    # TFLite's reference FULLY_CONNECTED may round one step differently from TFLM's port.
    assert np.max(np.abs(results["tflm"] - results["litert"])) <= 1


def test_one_sample_forms_are_equivalent(shared_models: Path) -> None:
    path = shared_models / "hello_world_int8.tflite"
    x = np.array([[37]], dtype=np.int8)
    as_array = tflm.run(path, x)
    as_list = tflm.run(path, [x])
    as_nested = tflm.run(path, [[x]])
    assert len(as_array) == len(as_list) == len(as_nested) == 1
    assert as_array[0] == as_list[0] == as_nested[0]


def test_wrong_input_shape_is_an_engine_error_not_a_crash(shared_models: Path) -> None:
    with pytest.raises(EngineError, match=r"expects int8\[1, 1\]") as info:
        tflm.run(shared_models / "hello_world_int8.tflite", [np.zeros((1, 2), np.int8)])
    assert not isinstance(info.value, tflm.TflmError)


def test_timing_is_measured_inside_the_worker(shared_models: Path) -> None:
    path = shared_models / "micro_speech_quantized.tflite"
    seconds = tflm.timing(path, mg.random_inputs(path, 2), repeats=5)
    assert 1e-6 < seconds < 1.0  # a 336 kMAC model: well under a second, far over a microsecond


def _importable_from(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make modules in ``folder`` importable by worker subprocesses."""
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def test_model_that_aborts_tflm_becomes_tflm_error(tmp_path: Path) -> None:
    path = mg.generate("softmax_tiny_scale")
    with pytest.raises(tflm.TflmError, match="SIGABRT") as info:
        tflm.run(path, mg.random_inputs(path, 1))
    assert "TFLM could not run" in str(info.value)


def test_reference_run_reports_both_runtimes_when_both_abort() -> None:
    path = mg.generate("softmax_tiny_scale")
    with pytest.raises(EngineError, match=r"(?s)no reference can run.*TFLM: .*SIGABRT.*LiteRT: .*SIGABRT"):
        bench.reference_run(path, mg.random_inputs(path, 1))


def test_reference_run_falls_back_to_litert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            shared_models: Path) -> None:
    """A worker killed by a signal is reported with the signal name; reference_run then uses LiteRT."""
    (tmp_path / "tk_segfault_worker.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    _importable_from(monkeypatch, tmp_path)
    path = shared_models / "hello_world_int8.tflite"
    x = [np.array([[10]], np.int8)]
    with pytest.raises(tflm.TflmError, match="SIGSEGV"):
        tflm.run_worker("tk_segfault_worker", "TFLM", tflm.TflmError, path, x, [], timeout=60)

    def crashing_tflm(model: Path, inputs: object, timeout: float = 60) -> list:
        return tflm.run_worker("tk_segfault_worker", "TFLM", tflm.TflmError, model, inputs, [], timeout)

    monkeypatch.setattr(tflm, "run", crashing_tflm)
    outputs, reference = bench.reference_run(path, x)
    assert reference == "litert"
    assert outputs[0].shape == (1, 1) and outputs[0].dtype == np.int8


def test_hung_worker_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_models: Path) -> None:
    (tmp_path / "tk_sleepy_worker.py").write_text("import time\ntime.sleep(60)\n")
    _importable_from(monkeypatch, tmp_path)
    with pytest.raises(tflm.TflmError, match="no answer within 2 s"):
        tflm.run_worker("tk_sleepy_worker", "TFLM", tflm.TflmError, shared_models / "hello_world_int8.tflite",
                        [np.zeros((1, 1), np.int8)], [], timeout=2)


def test_litert_refuses_person_detect_with_a_reason(shared_models: Path) -> None:
    with pytest.raises(litert.LiteRtError, match="quantized_dimension"):
        litert.run(shared_models / "person_detect.tflite", np.zeros((1, 96, 96, 1), np.int8))


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 8)
    with pytest.raises(tflm.TflmError, match="TFLM refused the model"):
        tflm.run(bad, [np.zeros((1, 1), np.int8)])
    with pytest.raises(EngineError, match="not a TensorFlow Lite flatbuffer"):
        tflm.arena_bytes(bad)
