"""TensorFlow Lite Micro (the ``tflite-micro`` pip package) as the engine's reference.

TFLM aborts or segfaults the whole process on some models (a corrupt flatbuffer; a SOFTMAX whose input
scale is so small that its multiplier cannot be represented), so it never runs in the caller's process:
every call starts one worker subprocess (``python -m tinyml_kit.engine.tflm``) that runs all samples and
exchanges inputs and outputs through ``.npz`` files. A worker that dies becomes a :class:`TflmError`
naming the exit code or signal and the end of its stderr. The plumbing (:func:`run_worker`,
:func:`as_samples`...) is shared with :mod:`tinyml_kit.engine.litert`.

The arena figure is TFLM's own: ``RecordingMicroAllocator``'s "Arena allocation total", which
``print_allocations()`` writes to the C-level stderr (file descriptor 2); the worker points fd 2 at a temp
file around that call and parses the number. It is the head (non-persistent tensors, planned by TFLM's
greedy planner) plus the tail (persistent structures: tensors, node registrations, quantisation data).

Inputs (``inputs`` everywhere in this module and in :mod:`tinyml_kit.engine.litert`):

- a list of samples; a sample is an array for single-input models, or a list/tuple with one array per
  model input;
- or one array: a single sample when its shape is the model input's, else a batch of samples stacked on
  a new leading axis (or on the size-1 batch axis).

Outputs: a list with one entry per sample: an array for single-output models, a tuple of arrays otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.engine.errors import EngineError

Sample = list[np.ndarray]
Output = np.ndarray | tuple[np.ndarray, ...]

DEFAULT_ARENA_BYTES = 32 * 1024 * 1024  # generous: TFLM reports what it used, not what it was given
DEFAULT_TIMEOUT_S = 600.0
EXIT_REFUSED = 3  # the worker caught a Python exception: the runtime refused the model
EXIT_BAD_INPUT = 4  # the inputs do not match the model
_ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")


class TflmError(EngineError):
    """TFLM could not run the model (it refused it, crashed or timed out); the message says which."""


@dataclass
class ReferenceResult:
    """What one reference worker run produced."""

    outputs: list[Output]
    arena_bytes: int | None = None  # TFLM's RecordingMicroAllocator total, when requested
    seconds_per_invoke: float | None = None  # median over the timed invokes, when requested


# --------------------------------------------------------------------------- inputs and outputs


def as_samples(inputs: Any, shapes: list[tuple[int, ...]], dtypes: list[np.dtype], source: str
               ) -> list[Sample]:
    """Normalise ``inputs`` (see the module docstring) to a list of samples, checking shapes and dtypes."""
    n_in = len(shapes)
    if isinstance(inputs, np.ndarray):
        if n_in != 1:
            raise EngineError(f"{source} has {n_in} inputs: pass a list of samples, each a list of "
                              f"{n_in} arrays")
        shape = shapes[0]
        if tuple(inputs.shape) == shape:
            samples: list[Sample] = [[inputs]]
        elif tuple(inputs.shape[1:]) == shape:
            samples = [[x] for x in inputs]
        elif shape and shape[0] == 1 and tuple(inputs.shape[1:]) == shape[1:]:
            samples = [[x[None]] for x in inputs]
        else:
            raise EngineError(f"{source}: input array of shape {tuple(inputs.shape)} is neither one sample "
                              f"of shape {shape} nor a batch of them")
    else:
        samples = [[item] if isinstance(item, np.ndarray) else list(item) for item in inputs]
    for i, sample in enumerate(samples):
        if len(sample) != n_in:
            raise EngineError(f"{source}: sample {i} has {len(sample)} arrays, the model has {n_in} inputs")
        for j, (x, shape, dtype) in enumerate(zip(sample, shapes, dtypes, strict=True)):
            x = np.asarray(x)
            if x.size == int(np.prod(shape, dtype=np.int64)) and x.shape != shape:
                x = x.reshape(shape)
            if x.shape != shape or x.dtype != dtype:
                raise EngineError(f"{source}: sample {i} input {j} is {x.dtype}{list(x.shape)}, the model "
                                  f"expects {np.dtype(dtype)}{list(shape)}")
            sample[j] = np.ascontiguousarray(x)
    return samples


def save_inputs(path: Path, inputs: Any) -> None:
    """Write ``inputs`` (any accepted form) to ``.npz`` for a worker; :func:`load_inputs` reads it back."""
    arrays: dict[str, np.ndarray] = {}
    if isinstance(inputs, np.ndarray):
        arrays["batch"] = inputs
    else:
        items = list(inputs)
        arrays["n"] = np.array(len(items))
        for i, item in enumerate(items):
            parts = [item] if isinstance(item, np.ndarray) else list(item)
            arrays[f"m{i}"] = np.array(len(parts))
            for j, x in enumerate(parts):
                arrays[f"s{i}_{j}"] = np.asarray(x)
    np.savez(path, **arrays)


def load_inputs(path: Path) -> Any:
    with np.load(path) as data:
        if "batch" in data:
            return data["batch"]
        return [[data[f"s{i}_{j}"] for j in range(int(data[f"m{i}"]))] for i in range(int(data["n"]))]


def save_outputs(path: Path, outputs: list[list[np.ndarray]], extra: dict[str, float]) -> None:
    """Worker side: per-sample output arrays plus scalar measurements, written atomically."""
    arrays = {f"o{i}_{k}": y for i, ys in enumerate(outputs) for k, y in enumerate(ys)}
    arrays["n"] = np.array(len(outputs))
    arrays["n_out"] = np.array(len(outputs[0]) if outputs else 0)
    for key, value in extra.items():
        arrays[key] = np.array(value)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_outputs(path: Path) -> ReferenceResult:
    with np.load(path) as data:
        n, n_out = int(data["n"]), int(data["n_out"])
        result = ReferenceResult(pack_outputs([[data[f"o{i}_{k}"] for k in range(n_out)] for i in range(n)]))
        if "arena_bytes" in data:
            result.arena_bytes = int(data["arena_bytes"])
        if "seconds_per_invoke" in data:
            result.seconds_per_invoke = float(data["seconds_per_invoke"])
    return result


def pack_outputs(per_sample: list[list[np.ndarray]]) -> list[Output]:
    """One array per sample for single-output models, a tuple of arrays otherwise."""
    return [ys[0] if len(ys) == 1 else tuple(ys) for ys in per_sample]


def time_invokes(feed: Callable[[Sample], None], invoke: Callable[[], Any], samples: list[Sample],
                 repeats: int) -> float:
    """Median seconds of ``invoke()`` over ``repeats`` calls (after one warm-up), cycling the samples."""
    if not samples:
        raise EngineError("timing needs at least one input sample")
    feed(samples[0])
    invoke()
    times = []
    for r in range(repeats):
        feed(samples[r % len(samples)])
        t0 = time.perf_counter_ns()
        invoke()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) * 1e-9


# --------------------------------------------------------------------------- the worker (subprocess side)


def worker_arguments(argv: list[str], prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--repeats", type=int, default=0, help="time this many invokes")
    parser.add_argument("--arena-size", type=int, default=DEFAULT_ARENA_BYTES)
    parser.add_argument("--arena", action="store_true", help="record TFLM's arena total")
    parser.add_argument("--optimized", action="store_true", help="LiteRT: default kernels, not reference")
    return parser.parse_args(argv)


def _read_c_stderr(call: Callable[[], Any]) -> str:
    """Run ``call()`` with file descriptor 2 pointed at a temp file; return what C code wrote there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")


def _count_io(get_details: Callable[[int], Any]) -> int:
    """TFLM's Python API has no input/output count: probe indices until it raises IndexError."""
    n = 0
    while True:
        try:
            get_details(n)
        except (IndexError, RuntimeError, ValueError):
            return n
        n += 1


def _worker(argv: list[str]) -> int:
    args = worker_arguments(argv, "python -m tinyml_kit.engine.tflm")
    try:
        from tflite_micro.python.tflite_micro import runtime

        interp = runtime.Interpreter.from_file(args.model, arena_size=args.arena_size)
        details = [interp.get_input_details(j) for j in range(_count_io(interp.get_input_details))]
        n_out = _count_io(interp.get_output_details)
    except Exception as exc:
        print(f"TFLM refused the model: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    samples = worker_samples(details, args)
    if samples is None:
        return EXIT_BAD_INPUT

    def feed(sample: Sample) -> None:
        for j, x in enumerate(sample):
            interp.set_input(x, j)

    def arena() -> dict[str, float]:
        if not args.arena:
            return {}
        if not samples:
            raise ValueError("the arena is measured after an invoke: pass at least one sample")
        text = _read_c_stderr(interp.print_allocations)
        match = _ARENA_RE.search(text)
        if not match:
            raise ValueError(f"no 'Arena allocation total' in print_allocations(): {text[-500:]!r}")
        return {"arena_bytes": float(match.group(1))}

    fetch = lambda: [np.array(interp.get_output(k), copy=True) for k in range(n_out)]  # noqa: E731
    return worker_run("TFLM", args, samples, feed, interp.invoke, fetch, arena)


def worker_samples(details: list[dict[str, Any]], args: argparse.Namespace) -> list[Sample] | None:
    """Worker side: the input samples shaped for the runtime's inputs, or None (problem printed)."""
    try:
        shapes = [tuple(int(d) for d in det["shape"]) for det in details]
        dtypes = [np.dtype(det["dtype"]) for det in details]
        return as_samples(load_inputs(Path(args.inputs)), shapes, dtypes, args.model)
    except EngineError as exc:
        print(str(exc), file=sys.stderr)
        return None


def worker_run(runtime_name: str, args: argparse.Namespace, samples: list[Sample],
               feed: Callable[[Sample], None], invoke: Callable[[], Any],
               fetch: Callable[[], list[np.ndarray]], measure: Callable[[], dict[str, float]] | None = None
               ) -> int:
    """Worker side: run every sample, optionally time invokes, save the outputs; the exit code."""
    try:
        outputs = []
        for sample in samples:
            feed(sample)
            invoke()
            outputs.append(fetch())
        extra = measure() if measure is not None else {}
        if args.repeats > 0:
            extra["seconds_per_invoke"] = time_invokes(feed, invoke, samples, args.repeats)
    except Exception as exc:
        print(f"{runtime_name} failed while running the model: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    save_outputs(Path(args.outputs), outputs, extra)
    return 0


# --------------------------------------------------------------------------- the caller side


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _stderr_tail(text: str, lines: int = 12) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return "\n".join(ln if len(ln) <= 400 else ln[:400] + " [...]" for ln in kept)


def run_worker(module: str, runtime_name: str, error: type[EngineError], path: str | Path, inputs: Any,
               flags: list[str], timeout: float) -> ReferenceResult:
    """Run ``python -m module MODEL IN.npz OUT.npz *flags`` and read its results.

    A worker killed by a signal, a non-zero exit or a timeout becomes ``error`` naming the runtime, the
    exit code or signal and the end of the worker's stderr; inputs that do not fit the model become a
    plain :class:`EngineError`.
    """
    model = Path(path)
    if not model.is_file():
        raise EngineError(f"model file not found: {model}")
    with tempfile.TemporaryDirectory(prefix="tk-ref-") as tmp:
        in_path, out_path = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        save_inputs(in_path, inputs)
        cmd = [sys.executable, "-m", module, str(model.resolve()), str(in_path), str(out_path), *flags]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            raise error(f"{runtime_name} could not run {model}: no answer within {timeout:.0f} s (the worker "
                        f"was killed); the model may make {runtime_name} loop forever.") from None
        if proc.returncode == EXIT_BAD_INPUT:
            raise EngineError(_stderr_tail(proc.stderr, 1))
        if proc.returncode != 0 or not out_path.exists():
            crashed = proc.returncode != EXIT_REFUSED
            hint = (f"{runtime_name} aborts the process on models it cannot prepare (e.g. a requantisation "
                    "scale out of range, a corrupt flatbuffer). " if crashed else "")
            raise error(
                f"{runtime_name} could not run {model}: its worker process {_describe_exit(proc.returncode)}."
                f"\n{_stderr_tail(proc.stderr)}\n{hint}Check that the file is an int8 .tflite from "
                "tf.lite.TFLiteConverter with sensible quantisation scales."
            )
        return load_outputs(out_path)


def profile(path: str | Path, inputs: Any, *, arena: bool = False, repeats: int = 0,
            arena_size: int | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> ReferenceResult:
    """Run every sample through TFLM in one worker; optionally record the arena, time ``repeats`` invokes."""
    if arena_size is None:  # what TFLM is given, not what it reports: 32 MiB, or 10x a larger model
        arena_size = max(DEFAULT_ARENA_BYTES, 10 * Path(path).stat().st_size if Path(path).is_file() else 0)
    flags = [f"--arena-size={arena_size}", f"--repeats={repeats}"] + (["--arena"] if arena else [])
    return run_worker("tinyml_kit.engine.tflm", "TFLM", TflmError, path, inputs, flags, timeout)


def run(path: str | Path, inputs: Any, timeout: float = DEFAULT_TIMEOUT_S) -> list[Output]:
    """TFLM's outputs for every sample (one subprocess for all of them)."""
    return profile(path, inputs, timeout=timeout).outputs


def zero_inputs(path: str | Path) -> list[Sample]:
    """One all-zero sample matching the model's inputs (read from the flatbuffer)."""
    from tinyml_kit.engine.modelgen import io_specs

    specs, _ = io_specs(path)
    return [[np.zeros(s.shape, dtype=s.dtype) for s in specs]]


def arena_bytes(path: str | Path, timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """TFLM's arena size for the model: RecordingMicroAllocator's total after one invoke on zeros."""
    result = profile(path, zero_inputs(path), arena=True, timeout=timeout)
    assert result.arena_bytes is not None
    return result.arena_bytes


def timing(path: str | Path, inputs: Any, repeats: int = 50, timeout: float = DEFAULT_TIMEOUT_S) -> float:
    """Median seconds per TFLM ``invoke()``, timed inside the worker (excludes process start-up)."""
    result = profile(path, inputs, repeats=repeats, timeout=timeout)
    assert result.seconds_per_invoke is not None
    return result.seconds_per_invoke


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
