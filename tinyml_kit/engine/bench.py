"""Benchmark one model: our compiled firmware against TFLM (memory, flash, speed, bit-exactness).

:func:`bench` compiles the model, runs ``n_inputs`` random samples through our firmware and through the
reference (:func:`reference_run`: TFLM, or LiteRT when TFLM cannot run the model) and returns one flat
dict (see :data:`BENCH_KEYS`). Any error is caught and stored under ``"error"``, so one failing model
does not stop a multi-model benchmark.

Host speed method: both sides time only the inference call, inside their own process, on the same
machine, single-threaded. TFLM: the worker times ``tflm_repeats`` ``interpreter.invoke()`` calls with
``time.perf_counter_ns`` and takes the median (this includes ~1 us of Python binding overhead, which
matters only for models that run in microseconds). Ours: the generated host harness
(``firmware/templates/main.c``) times ``tk_invoke()`` with CLOCK_MONOTONIC, averaged over ``our_repeat``
runs per sample; we take the median over samples. The two alternate for :data:`TIMING_ROUNDS` rounds
and each side keeps its fastest round, so a burst of load from other processes hits both sides alike
or is discarded. ``host_speedup_vs_tflm`` = TFLM time / our time.
On cortex-m4, bit-exactness and ``qemu_instructions`` (median over samples of the instructions QEMU
counts in ``tk_invoke()``) come from the firmware under QEMU; the host speed from a host build of the
same project. ``qemu_macs_per_instruction`` is the model's MACs per instruction, and
``qemu_macs_per_instruction_by_kernel`` the same per kernel function, measured with the per-op profile
build (``Project.profile``: instructions counted around every kernel call).

Patch-based inference: the model is compiled a second time with ``patch=True``; ``patch_peak_sram_bytes``
is its arena (the layer-by-layer arena when no patch stage helps), ``patch_mac_overhead`` the fraction of
extra MACs, ``patch_grid``/``patch_split_op`` the stage chosen. The patched firmware runs the same inputs
and ``bit_exact`` covers both builds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.engine import litert, tflm
from tinyml_kit.engine.errors import EngineError
from tinyml_kit.engine.modelgen import random_inputs
from tinyml_kit.errors import TinymlKitError

BENCH_KEYS = (
    "model", "target", "n_inputs", "reference", "bit_exact", "mismatched_samples", "max_abs_diff",
    "peak_sram_bytes", "lower_bound_bytes", "greedy_tflm_like_bytes", "tflm_arena_bytes", "flash_bytes",
    "macs", "host_invoke_s", "tflm_invoke_s", "host_speedup_vs_tflm", "qemu_instructions",
    "qemu_macs_per_instruction", "qemu_macs_per_instruction_by_kernel", "patch_peak_sram_bytes",
    "patch_mac_overhead", "patch_grid", "patch_split_op", "patch_qemu_instructions", "seconds", "error",
)
TFLM_TIMING_REPEATS = 20  # timed invoke() calls per round in the TFLM worker (median)
OUR_TIMING_REPEAT = 5  # tk_invoke() runs per sample in our harness (averaged), median over samples
TIMING_SAMPLES = 4  # samples timed per round
TIMING_ROUNDS = 3  # rounds alternating TFLM and ours; each side keeps its fastest round


def reference_run(path: str | Path, inputs: Any) -> tuple[list[tflm.Output], str]:
    """Reference outputs for ``inputs``: TFLM's, or LiteRT's when TFLM cannot run the model.

    Returns ``(outputs, "tflm" | "litert")``. When both fail, raises :class:`EngineError` with both reasons.
    """
    try:
        return tflm.run(path, inputs), "tflm"
    except tflm.TflmError as tflm_error:
        try:
            return litert.run(path, inputs), "litert"
        except EngineError as litert_error:
            raise EngineError(f"no reference can run {path}.\nTFLM: {tflm_error}\nLiteRT: {litert_error}") \
                from litert_error


def _as_lists(outputs: list[Any]) -> list[list[np.ndarray]]:
    return [[np.asarray(y) for y in (o if isinstance(o, list | tuple) else [o])] for o in outputs]


def compare_outputs(ours: list[Any], reference: list[Any]) -> tuple[bool, int, float]:
    """(all equal, number of samples that differ, largest absolute difference) between two output lists."""
    a, b = _as_lists(ours), _as_lists(reference)
    if len(a) != len(b):
        raise EngineError(f"got {len(a)} output samples to compare with {len(b)} reference samples")
    mismatched, worst = 0, 0.0
    for ys, rs in zip(a, b, strict=True):
        same = len(ys) == len(rs)
        for y, r in zip(ys, rs, strict=False):
            if y.shape != r.shape or y.dtype != r.dtype:
                same, worst = False, float("inf")
                continue
            diff = np.abs(y.astype(np.float64) - r.astype(np.float64))
            if diff.size and diff.max() > 0:
                same, worst = False, max(worst, float(diff.max()))
        mismatched += not same
    return mismatched == 0, mismatched, worst


def _median_or_none(values: list[int]) -> float | None:
    return float(np.median(values)) if values else None


def greedy_tflm_like_bytes(project: Any) -> int:
    """Arena of TFLM's greedy planner (as re-implemented by the planner) for a compiled project."""
    from tinyml_kit.engine.planner import greedy_tflm_like
    from tinyml_kit.engine.project import build_problem, lower_graph

    graph = project.graph
    return greedy_tflm_like(build_problem(graph, lower_graph(graph))).arena_bytes


def bench(path: str | Path, target: str = "host", n_inputs: int = 20, seed: int = 0, *,
          work_dir: str | Path | None = None, tflm_repeats: int = TFLM_TIMING_REPEATS,
          our_repeat: int = OUR_TIMING_REPEAT) -> dict[str, Any]:
    """Compile, run and compare one model; returns a dict with every key of :data:`BENCH_KEYS`.

    ``work_dir`` keeps the compiled project (a temporary folder otherwise).
    """
    path = Path(path)
    result: dict[str, Any] = dict.fromkeys(BENCH_KEYS)
    result.update(model=path.stem, target=target, n_inputs=n_inputs)
    start = time.perf_counter()
    try:
        if work_dir is not None:
            _bench_into(result, path, target, n_inputs, seed, Path(work_dir), tflm_repeats, our_repeat)
        else:
            with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:
                _bench_into(result, path, target, n_inputs, seed, Path(tmp) / path.stem, tflm_repeats,
                            our_repeat)
    except TinymlKitError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug must not stop a multi-model benchmark either; say what it was
        result["error"] = f"internal error {type(exc).__name__}: {exc}"
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _bench_into(result: dict[str, Any], path: Path, target: str, n_inputs: int, seed: int, out_dir: Path,
                tflm_repeats: int, our_repeat: int) -> None:
    from tinyml_kit.engine import compile as compile_model

    if not path.is_file():
        raise EngineError(f"model file not found: {path}")
    samples = random_inputs(path, n_inputs, seed)
    project = compile_model(path, out_dir, target=target)
    result.update(peak_sram_bytes=project.peak_sram_bytes, lower_bound_bytes=project.lower_bound_bytes,
                  macs=int(project.manifest.get("macs", 0)))
    result["greedy_tflm_like_bytes"] = greedy_tflm_like_bytes(project)
    result["flash_bytes"] = project.flash_bytes

    # The reference: TFLM (outputs and arena in one worker), else LiteRT.
    try:
        ref = tflm.profile(path, samples, arena=True)
        reference, ref_outputs = "tflm", ref.outputs
        result["tflm_arena_bytes"] = ref.arena_bytes
    except tflm.TflmError:
        ref_outputs, reference = reference_run(path, samples)
    result["reference"] = reference

    # Our firmware on its target: outputs (and QEMU instruction counts on cortex-m4).
    ours = project.run_many(samples, target=target)
    if target == "cortex-m4":
        result["qemu_instructions"] = _median_or_none(project.last_counts)
        if result["qemu_instructions"] and result["macs"]:
            result["qemu_macs_per_instruction"] = result["macs"] / result["qemu_instructions"]
        result["qemu_macs_per_instruction_by_kernel"] = macs_per_instruction_by_kernel(
            project.profile(samples[:1]))
    bit_exact, mismatched, worst = compare_outputs(ours, ref_outputs)

    # The same model patch by patch (MCUNetV2): its arena, extra MACs, and outputs.
    patched = compile_model(path, out_dir.with_name(out_dir.name + "-patch"), target=target, patch=True)
    result.update(patch_peak_sram_bytes=patched.peak_sram_bytes, patch_mac_overhead=patched.mac_overhead)
    if patched.patch and patched.patch.get("applied"):
        result.update(patch_grid=patched.patch["grid"], patch_split_op=patched.patch["split_op"])
        exact, bad, diff = compare_outputs(patched.run_many(samples, target=target), ref_outputs)
        bit_exact, mismatched, worst = bit_exact and exact, max(mismatched, bad), max(worst, diff)
        if target == "cortex-m4":
            result["patch_qemu_instructions"] = _median_or_none(patched.last_counts)
    result.update(bit_exact=bit_exact, mismatched_samples=mismatched, max_abs_diff=worst)

    # Host speed: alternate TFLM and our host build for a few rounds; keep each side's best round.
    timed = samples[:TIMING_SAMPLES]
    tflm_times, our_times = [], []
    for _ in range(TIMING_ROUNDS):
        if reference == "tflm":
            tflm_times.append(tflm.profile(path, timed, repeats=tflm_repeats).seconds_per_invoke)
        project.run_many(timed, target="host", repeat=our_repeat)
        our_times.append(_ns_to_s(_median_or_none(project.last_counts)))
    result["host_invoke_s"] = min((t for t in our_times if t), default=None)
    result["tflm_invoke_s"] = min((t for t in tflm_times if t), default=None)
    if result["tflm_invoke_s"] and result["host_invoke_s"]:
        result["host_speedup_vs_tflm"] = result["tflm_invoke_s"] / result["host_invoke_s"]


def macs_per_instruction_by_kernel(profile: list[dict[str, Any]]) -> dict[str, float]:
    """MACs per instruction of each kernel function (summed over its calls) from ``Project.profile``;
    kernels without multiplies are left out."""
    totals: dict[str, list[float]] = {}
    for row in profile:
        entry = totals.setdefault(row["function"], [0.0, 0.0])
        entry[0] += row["macs"]
        entry[1] += row["count"]
    return {fn: macs / count for fn, (macs, count) in sorted(totals.items()) if macs and count}


def _ns_to_s(ns: float | None) -> float | None:
    return None if ns is None else ns * 1e-9
