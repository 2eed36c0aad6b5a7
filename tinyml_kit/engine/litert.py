"""LiteRT (``ai_edge_litert``, formerly the TFLite interpreter) as the second reference.

Used when TFLM cannot run a model. Outputs come from TFLite's *reference* kernels
(``OpResolverType.BUILTIN_REF``): the optimised kernels and the XNNPACK delegate may round differently,
and TFLM's kernels are ports of the reference ones. :func:`timing` uses the default (optimised) kernels.
Falls back to ``tflite_runtime`` when ``ai_edge_litert`` is not installed.

LiteRT validates models more strictly than TFLM: it refuses per-channel quantisation on a dimension
other than 0 for depthwise filters (``person_detect.tflite`` from TFLM's examples), which TFLM accepts.
Like TFLM it aborts the process on some models (a SOFTMAX whose input scale is ~1e-9), so it runs in a
worker subprocess too, with the same ``inputs``/outputs conventions as :mod:`tinyml_kit.engine.tflm`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.engine.errors import EngineError
from tinyml_kit.engine.tflm import (
    DEFAULT_TIMEOUT_S,
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    Output,
    ReferenceResult,
    Sample,
    run_worker,
    worker_arguments,
    worker_run,
    worker_samples,
)
from tinyml_kit.errors import MissingDependencyError


class LiteRtError(EngineError):
    """LiteRT could not load or run the model (it refused it, crashed or timed out)."""


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
    """A ready (tensors allocated), single-threaded LiteRT interpreter, in *this* process."""
    module = _interpreter_module()
    kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": 1}
    resolver = getattr(module, "OpResolverType", None)
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_REF if reference_kernels else resolver.AUTO
    interp = module.Interpreter(**kwargs)
    interp.allocate_tensors()
    return interp


def _worker(argv: list[str]) -> int:
    args = worker_arguments(argv, "python -m tinyml_kit.engine.litert")
    try:
        interp = load(args.model, reference_kernels=not args.optimized)
        in_details, out_details = interp.get_input_details(), interp.get_output_details()
    except MissingDependencyError:
        raise
    except Exception as exc:
        print(f"LiteRT refused the model: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    samples = worker_samples(in_details, args)
    if samples is None:
        return EXIT_BAD_INPUT

    def feed(sample: Sample) -> None:
        for det, x in zip(in_details, sample, strict=True):
            interp.set_tensor(det["index"], x)

    fetch = lambda: [np.array(interp.get_tensor(d["index"]), copy=True) for d in out_details]  # noqa: E731
    return worker_run("LiteRT", args, samples, feed, interp.invoke, fetch)


def profile(path: str | Path, inputs: Any, *, repeats: int = 0, reference_kernels: bool = True,
            timeout: float = DEFAULT_TIMEOUT_S) -> ReferenceResult:
    """Run every sample through LiteRT in one worker subprocess; optionally time ``repeats`` invokes."""
    _interpreter_module()  # a missing package is a MissingDependencyError here, not a worker crash
    flags = [f"--repeats={repeats}"] + ([] if reference_kernels else ["--optimized"])
    return run_worker("tinyml_kit.engine.litert", "LiteRT", LiteRtError, path, inputs, flags, timeout)


def run(path: str | Path, inputs: Any, timeout: float = DEFAULT_TIMEOUT_S) -> list[Output]:
    """LiteRT's outputs (reference kernels) for every sample."""
    return profile(path, inputs, timeout=timeout).outputs


def timing(path: str | Path, inputs: Any, repeats: int = 50, timeout: float = DEFAULT_TIMEOUT_S) -> float:
    """Median seconds per ``invoke()`` with LiteRT's default (optimised) kernels, single-threaded."""
    result = profile(path, inputs, repeats=repeats, reference_kernels=False, timeout=timeout)
    assert result.seconds_per_invoke is not None
    return result.seconds_per_invoke


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
