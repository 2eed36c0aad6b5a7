"""bench(): output comparison, error capture, and the engine_vs_tflm benchmark script's RESULTS.md section."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from tk_testing import require_tool

from tinyml_kit.engine import bench

REPO = Path(__file__).resolve().parents[2]


def test_compare_outputs_counts_differing_samples() -> None:
    a = [np.array([1, 2], np.int8), np.array([3, 4], np.int8), (np.zeros(2, np.int8), np.ones(1, np.int8))]
    b = [np.array([1, 2], np.int8), np.array([3, 7], np.int8), (np.zeros(2, np.int8), np.ones(1, np.int8))]
    assert bench.compare_outputs(a, a) == (True, 0, 0.0)
    assert bench.compare_outputs(a, b) == (False, 1, 3.0)
    exact, mismatched, worst = bench.compare_outputs([np.zeros(2, np.int8)], [np.zeros(2, np.int16)])
    assert not exact and mismatched == 1 and worst == float("inf")  # a dtype change is a mismatch


def test_bench_records_errors_instead_of_raising(tmp_path: Path) -> None:
    result = bench.bench(tmp_path / "missing.tflite")
    assert set(result) == set(bench.BENCH_KEYS)
    assert result["model"] == "missing" and "not found" in result["error"]


def test_bench_on_cortex_m4_counts_instructions(shared_models: Path) -> None:
    for tool in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    r = bench.bench(shared_models / "hello_world_int8.tflite", target="cortex-m4", n_inputs=3)
    assert r["error"] is None and r["bit_exact"] is True
    assert r["qemu_instructions"] > r["macs"] > 0  # at least one instruction per MAC on a scalar model
    assert r["flash_bytes"] > 1000  # the ELF's text + data, not just the weights
    assert r["host_invoke_s"] > 0 and r["tflm_invoke_s"] > 0


def _load_benchmark_script() -> object:
    spec = importlib.util.spec_from_file_location("engine_vs_tflm", REPO / "benchmarks" / "engine_vs_tflm.py")
    if spec is None or spec.loader is None:
        pytest.skip("benchmarks/engine_vs_tflm.py is not in this checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_script_replaces_only_its_section(shared_models: Path, tmp_path: Path) -> None:
    require_tool("gcc")
    script = _load_benchmark_script()
    results = tmp_path / "RESULTS.md"
    other = "<!-- diffaug:begin -->\nkeep me\n<!-- diffaug:end -->"
    begin, end = "<!-- engine:begin -->", "<!-- engine:end -->"
    results.write_text(f"# Benchmark results\n\n{other}\n\n{begin}\nold numbers\n{end}\n")
    code = script.main(["--models", str(shared_models / "hello_world_int8.tflite"), "--target", "host",
                        "--inputs", "2", "--out", str(tmp_path / "out"), "--results", str(results)])
    assert code == 0
    text = results.read_text()
    assert other in text and "old numbers" not in text and text.count(begin) == 1
    assert "| hello_world_int8 | tflm | yes | 1.47 |" in text  # TFLM's 1,504-byte arena
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["rows"][0]["bit_exact"] is True
    assert (tmp_path / "out" / "hello_world_int8_live_memory.png").stat().st_size > 1000
