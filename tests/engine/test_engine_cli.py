"""``tinyml-kit engine compile | run | bench``: output, files and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tk_testing import require_tool

from tinyml_kit.cli import main
from tinyml_kit.engine import bench, tflm

HELLO = "hello_world_int8.tflite"


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.tflite"
    path.write_bytes(b"definitely not a model" * 10)
    return path


def test_bench_json_prints_one_object_per_model(shared_models: Path, garbage: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("gcc")
    code = main(["engine", "bench", str(shared_models / HELLO), str(garbage), "--json", "--inputs", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    good, bad = (json.loads(line) for line in lines)
    assert set(bench.BENCH_KEYS) <= set(good)
    assert good["model"] == "hello_world_int8" and good["error"] is None
    assert good["bit_exact"] is True and good["reference"] == "tflm"
    assert good["tflm_arena_bytes"] == 1504
    assert good["peak_sram_bytes"] <= good["greedy_tflm_like_bytes"] < good["tflm_arena_bytes"]
    assert good["lower_bound_bytes"] <= good["peak_sram_bytes"]
    assert good["macs"] == 16 + 16 * 16 + 16  # three dense layers: 1->16->16->1
    assert good["host_speedup_vs_tflm"] > 0 and good["qemu_instructions"] is None
    assert bad["model"] == "garbage" and "not a TensorFlow Lite flatbuffer" in bad["error"]
    assert code == 1  # one model failed; the other was still benchmarked


def test_bench_table(shared_models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("gcc")
    assert main(["engine", "bench", str(shared_models / HELLO), "--inputs", "2"]) == 0
    out = capsys.readouterr().out
    assert "hello_world_int8" in out and "1,504" in out  # TFLM's arena, in bytes


def test_compile_then_run_matches_tflm(shared_models: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("gcc")
    project = tmp_path / "hello"
    assert main(["engine", "compile", str(shared_models / HELLO), "-o", str(project)]) == 0
    out = capsys.readouterr().out
    for label in ("peak SRAM", "lower bound", "TFLM-style greedy", "flash"):
        assert label in out
    x = np.arange(-40, 40, 8, dtype=np.int8).reshape(10, 1, 1)  # a batch of 10 samples
    np.save(tmp_path / "x.npy", x)
    assert main(["engine", "run", str(project), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    expected = np.stack(tflm.run(shared_models / HELLO, x))
    assert y.dtype == np.int8 and np.array_equal(y, expected)


@pytest.mark.parametrize("argv", [
    ["engine", "compile", "{garbage}", "-o", "{tmp}/out"],
    ["engine", "run", "{tmp}", "--input", "{garbage}", "--output", "{tmp}/y.npy"],
])
def test_errors_are_one_line_with_exit_code_2(argv: list[str], garbage: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(garbage=garbage, tmp=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinyml-kit engine: error:") and "Traceback" not in err


def test_run_with_the_wrong_number_of_inputs(shared_models: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("gcc")
    main(["engine", "compile", str(shared_models / HELLO), "-o", str(tmp_path / "p")])
    np.save(tmp_path / "x.npy", np.zeros((1, 1), np.int8))
    code = main(["engine", "run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"),
                 "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")])
    assert code == 2 and "pass --input once for each" in capsys.readouterr().err


def test_engine_cli_does_not_import_tensorflow() -> None:
    code = ("import sys; from tinyml_kit.cli import build_parser; build_parser(); "
            "import tinyml_kit.engine.bench, tinyml_kit.engine.tflm, tinyml_kit.engine.litert; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'ai_edge_litert') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
