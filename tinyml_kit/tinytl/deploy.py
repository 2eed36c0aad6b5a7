"""Deploying a TinyTL model to a microcontroller: int8 TFLite, then a bit-exact tinyml-kit engine project.

With ``norm="batch"`` every normalisation folds away in the int8 conversion: the backbone's frozen
batch norms were folded by :func:`~tinyml_kit.tinytl.prepare` already, and those of the lite residual
branches fold into their convolutions. The branches then add a grouped ``CONV_2D``,
``AVERAGE_POOL_2D``, ``RESIZE_BILINEAR`` (or ``RESIZE_NEAREST_NEIGHBOR``) and ``ADD``, all of which the
engine runs bit-exactly with TFLM. Group normalisation has no int8 TFLite form (the converter leaves
``SQUARE``/``NEG`` in float), so such models are refused up front.

>>> from tinyml_kit import tinytl                                              # doctest: +SKIP
>>> model = tinytl.prepare(backbone, "lite_residual+bias", 10, norm="batch")   # doctest: +SKIP
>>> model.fit(...)                                                             # doctest: +SKIP
>>> result = tinytl.deploy(model, x_train[:256], "build/tinytl", target="cortex-m4")  # doctest: +SKIP
>>> result.project.peak_sram_bytes                                             # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyml_kit.tinytl.errors import TinyTLError

if TYPE_CHECKING:
    from tinyml_kit.engine.project import Project

TFLITE_NAME = "model_int8.tflite"
PROJECT_DIR = "project"


class DeploymentError(TinyTLError):
    """A TinyTL model cannot be deployed, or its compiled outputs differ from the reference runtime."""


@dataclass(frozen=True)
class Deployment:
    """What :func:`deploy` produced: the int8 model, the engine project and how it was checked."""

    tflite: Path  # the full-integer model (int8 input and output)
    project: Project  # the engine's C project: run it, read peak_sram_bytes, flash_bytes...
    reference: str | None  # "tflm" (or "litert" where TFLM cannot run it) the outputs equal; None: unchecked
    checked_samples: int  # random int8 inputs on which the engine's outputs equal the reference's

    @property
    def peak_sram_bytes(self) -> int:
        """The engine's activation arena (all activations and scratch) in bytes."""
        return int(self.project.peak_sram_bytes)


def _walk_layers(layer: Any) -> Iterator[Any]:
    for child in getattr(layer, "layers", None) or []:
        yield child
        yield from _walk_layers(child)


def check_deployable(model: Any) -> None:
    """Raise :class:`DeploymentError` when ``model`` has parts without an int8 TFLite form."""
    from tinyml_kit.tinytl.lite_residual import LiteResidual

    group_norm = [layer.name for layer in _walk_layers(model)
                  if isinstance(layer, LiteResidual) and layer.norm != "batch"]
    if group_norm:
        raise DeploymentError(
            f"model '{model.name}': lite residual branch(es) {', '.join(group_norm)} use group "
            "normalisation, which has no int8 TFLite form (the converter keeps SQUARE/NEG in float32). "
            "Prepare the model with tinytl.prepare(..., norm='batch') for deployment: batch norms fold into "
            "the convolutions."
        )


def export_int8(model: Any, representative_data: Any, path: str | os.PathLike, *,
                max_samples: int = 256) -> Path:
    """Convert a prepared (and trained) TinyTL model to a full-integer ``.tflite`` with int8 I/O.

    ``representative_data``: inputs in the model's input scale (array, ``(x, y)``, dataset...), used to
    calibrate activation ranges; a few hundred training images. Written atomically to ``path``.
    """
    from tinyml_kit.export import to_tflite

    check_deployable(model)
    return Path(to_tflite(model, representative_data, int8=True, io="int8", path=path,
                          max_samples=max_samples))


def check_bit_exact(tflite: str | os.PathLike, project: Project, samples: int = 5, seed: int = 0) -> str:
    """Run ``project`` and the reference runtime (TFLM, else LiteRT) on ``samples`` random int8 inputs;
    returns the reference's name, or raises :class:`DeploymentError` when any output differs."""
    from tinyml_kit.engine import bench
    from tinyml_kit.engine.modelgen import random_inputs

    inputs = random_inputs(tflite, samples, seed=seed)
    reference, name = bench.reference_run(tflite, inputs)
    exact, mismatched, worst = bench.compare_outputs(project.run_many(inputs), reference)
    if not exact:
        raise DeploymentError(
            f"{tflite}: the engine's outputs differ from {name}'s on {mismatched} of {samples} random inputs "
            f"(largest difference {worst}). Please report this with the .tflite file attached."
        )
    return name


def deploy(model: Any, representative_data: Any, out_dir: str | os.PathLike, *, target: str = "host",
           check_samples: int = 5, seed: int = 0, max_samples: int = 256) -> Deployment:
    """Export ``model`` to int8 TFLite and compile it with tinyml-kit's engine, checked bit-exact.

    Args:
        model: a model from :func:`~tinyml_kit.tinytl.prepare` with ``norm="batch"``, usually trained.
        representative_data: calibration inputs in the model's input scale (see :func:`export_int8`).
        out_dir: receives ``model_int8.tflite`` and the C project in ``project/``.
        target: ``"host"`` (gcc) or ``"cortex-m4"`` (arm-none-eabi-gcc; runs on QEMU).
        check_samples: random int8 inputs on which the compiled project must equal the reference
            runtime (TFLM, else LiteRT); 0 skips the check (and the build it needs).
        seed: seed of those inputs.
        max_samples: at most this many representative samples calibrate the quantisation.
    """
    from tinyml_kit import engine

    if check_samples < 0:
        raise DeploymentError(f"check_samples must be >= 0. Received: check_samples={check_samples}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tflite = export_int8(model, representative_data, out_dir / TFLITE_NAME, max_samples=max_samples)
    project = engine.compile(tflite, out_dir / PROJECT_DIR, target=target)
    reference = check_bit_exact(tflite, project, check_samples, seed) if check_samples else None
    return Deployment(tflite=tflite, project=project, reference=reference, checked_samples=check_samples)
