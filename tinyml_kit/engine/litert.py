"""LiteRT (``ai_edge_litert``, formerly the TFLite interpreter) as a second reference.

Used when TFLM cannot run a model. Outputs come from TFLite's *reference* kernels
(``OpResolverType.BUILTIN_REF``): the optimised kernels and the XNNPACK delegate may round differently,
and TFLM's kernels are ports of the reference ones. :func:`timing` uses the default (optimised) kernels.
Falls back to ``tflite_runtime`` when ``ai_edge_litert`` is not installed.

LiteRT validates models more strictly than TFLM: it refuses per-channel quantisation on a dimension
other than 0 for depthwise filters (``person_detect.tflite`` from TFLM's examples), which TFLM accepts.
Runs in-process: LiteRT raises Python errors on bad models instead of aborting.

``inputs``/outputs follow :mod:`tinyml_kit.engine.tflm`'s conventions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.engine.errors import EngineError
from tinyml_kit.engine.tflm import Output, as_samples, pack_outputs
from tinyml_kit.errors import MissingDependencyError


class LiteRtError(EngineError):
    """LiteRT could not load or run the model; the message holds its reason."""


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        try:
            from tflite_runtime import interpreter  # type: ignore[no-redef]
        except ImportError:
            raise MissingDependencyError(
                "neither ai-edge-litert nor tflite-runtime is installed; run `pip install ai-edge-litert`"
            ) from None
    return interpreter


def load(path: str | Path, reference_kernels: bool = True) -> Any:
    """A ready (tensors allocated) LiteRT interpreter for the model, single-threaded."""
    module = _interpreter_module()
    model = Path(path)
    if not model.is_file():
        raise EngineError(f"model file not found: {model}")
    kwargs: dict[str, Any] = {"model_path": str(model), "num_threads": 1}
    resolver = getattr(module, "OpResolverType", None)
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_REF if reference_kernels else resolver.AUTO
    try:
        interp = module.Interpreter(**kwargs)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise LiteRtError(f"LiteRT could not load {model}: {exc}") from exc
    return interp


def _samples(interp: Any, inputs: Any, source: str) -> list[list[np.ndarray]]:
    details = interp.get_input_details()
    shapes = [tuple(int(d) for d in det["shape"]) for det in details]
    return as_samples(inputs, shapes, [np.dtype(det["dtype"]) for det in details], source)


def _invoke(interp: Any, sample: list[np.ndarray]) -> None:
    for det, x in zip(interp.get_input_details(), sample, strict=True):
        interp.set_tensor(det["index"], x)
    interp.invoke()


def run(path: str | Path, inputs: Any) -> list[Output]:
    """LiteRT's outputs (reference kernels) for every sample."""
    interp = load(path)
    outs = interp.get_output_details()
    per_sample = []
    try:
        for sample in _samples(interp, inputs, str(path)):
            _invoke(interp, sample)
            per_sample.append([np.array(interp.get_tensor(d["index"]), copy=True) for d in outs])
    except RuntimeError as exc:
        raise LiteRtError(f"LiteRT failed while running {path}: {exc}") from exc
    return pack_outputs(per_sample)


def timing(path: str | Path, inputs: Any, repeats: int = 50) -> float:
    """Median seconds per ``invoke()`` with LiteRT's default (optimised) kernels, single-threaded."""
    interp = load(path, reference_kernels=False)
    samples = _samples(interp, inputs, str(path))
    if not samples:
        raise EngineError("timing needs at least one input sample")
    _invoke(interp, samples[0])  # warm-up
    times = []
    for r in range(repeats):
        sample = samples[r % len(samples)]
        for det, x in zip(interp.get_input_details(), sample, strict=True):
            interp.set_tensor(det["index"], x)
        t0 = time.perf_counter_ns()
        interp.invoke()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) * 1e-9
