"""Measured peak memory of real training steps (TensorFlow backend).

TensorFlow's allocator statistics are the instrument: ``tf.config.experimental.get_memory_info``
works for ``"CPU:0"`` in TF 2.20 and reports ``{"current", "peak"}`` bytes of the tensors TensorFlow
allocated (XLA clusters included); ``reset_memory_stats`` restarts the peak. A measurement is:

1. run warm-up steps (tracing, optimizer slots, one-off buffers);
2. ``reset_memory_stats``; read ``current`` = resident bytes (weights, optimizer state, the batch);
3. run one training step (``model.train_on_batch``: Keras' own ``train_step``);
4. read ``peak``: ``peak_bytes`` is the allocator peak during the step, resident tensors included,
   and ``step_bytes = peak_bytes - resident_bytes`` what the step itself needed (activations kept
   for backward, gradients, temporaries).

Two properties of TensorFlow matter, and :func:`measure_in_subprocess` handles both by measuring
in a fresh process:

* **Coverage.** TensorFlow's default x86 CPU allocator (oneDNN) counts only allocations of 256 KiB
  and more; with ``TF_CPU_ALLOCATOR_USE_BFC=true`` set before TensorFlow starts, every tensor is
  counted (to 256-byte granularity). The subprocess sets it; in your own process the figures
  miss small tensors unless you set it too.
* **Order.** The graph executor runs independent ops in parallel and in no fixed order, and the order
  decides which activations are alive together: peaks of the same step can differ by tens of
  percent between processes. With ``tf.config.threading.set_inter_op_parallelism_threads(1)`` (set
  before TensorFlow runs anything; the subprocess does) repeated measurements agree to the byte.

Compare methods at the same batch size, input size and ``jit_compile`` setting (XLA on CPU plans
memory very differently: prefer ``jit_compile=False``, as :func:`compile_for_measurement` does).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tinyml_kit.tinytl.errors import TinyTLError

SUBPROCESS_ENV = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclass
class MemoryMeasurement:
    """One measured training step (bytes)."""

    peak_bytes: int  # allocator peak during the step, resident tensors included
    resident_bytes: int  # allocator bytes in use just before the step
    step_bytes: int  # peak_bytes - resident_bytes
    device: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_device() -> str:
    """``"GPU:0"`` when TensorFlow sees a GPU, else ``"CPU:0"``."""
    import tensorflow as tf

    return "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"


def memory_info(device: str) -> dict[str, int]:
    """``{"current", "peak"}`` allocator bytes of ``device``, with a clear error if unsupported."""
    import tensorflow as tf

    try:
        return tf.config.experimental.get_memory_info(device)
    except (ValueError, RuntimeError) as exc:
        raise TinyTLError(
            f"TensorFlow cannot report memory of device {device!r} ({exc}); measure on 'CPU:0' or 'GPU:0'"
        ) from exc


def reset_peak(device: str) -> int:
    """Restart the allocator's peak counter; returns the bytes currently in use."""
    import tensorflow as tf

    tf.config.experimental.reset_memory_stats(device)
    return int(memory_info(device)["current"])


def compile_for_measurement(model: Any, learning_rate: float = 1e-3) -> Any:
    """Compile ``model`` with Adam and sparse categorical cross-entropy, without XLA."""
    import keras

    from_logits = getattr(model.layers[-1], "activation", None) in (None, keras.activations.linear)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        jit_compile=False,
    )
    return model


def measure_training_step(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    warmup: int = 2,
    device: str | None = None,
    restore_weights: bool = True,
) -> MemoryMeasurement:
    """Peak memory of one ``model.train_on_batch(x, y)`` step (compile the model first).

    ``warmup`` steps run before the measured one. With ``restore_weights`` the model's weights are
    put back afterwards (the optimizer's step counter and slots keep their new values).
    """
    if not getattr(model, "compiled", False):
        raise TinyTLError("compile the model before measuring (e.g. tinytl.compile_for_measurement(model))")
    device = device or default_device()
    saved = model.get_weights() if restore_weights else None
    for _ in range(max(1, warmup)):
        model.train_on_batch(x, y)
    resident = reset_peak(device)
    model.train_on_batch(x, y)
    peak = int(memory_info(device)["peak"])
    if saved is not None:
        model.set_weights(saved)
    return MemoryMeasurement(peak, resident, peak - resident, device)


def random_batch(model: Any, batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random input batch and integer labels matching ``model``'s input and output shapes."""
    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])
    x = rng.uniform(-1.0, 1.0, size=(batch_size, *shape)).astype("float32")
    return x, rng.integers(0, classes, size=batch_size)


# ------------------------------------------------------------------------ fresh-process CLI
def measure_in_subprocess(
    backbone: str,
    method: str,
    *,
    image_size: int = 224,
    batch_size: int = 8,
    num_classes: int = 10,
    width_mult: float = 1.0,
    memory_lean: bool = True,
    norm: str = "batch",
    timeout: float = 900.0,
) -> dict[str, Any]:
    """Measure one method in a fresh Python process, returning its JSON report.

    The child counts every tensor (``TF_CPU_ALLOCATOR_USE_BFC=true``), runs ops in one fixed order
    (one inter-op thread), builds the backbone (random weights: memory does not depend on them),
    prepares it, warms up and measures one step as :func:`measure_training_step` does.
    """
    import subprocess

    command = [
        sys.executable, "-m", "tinyml_kit.tinytl.measure", "--backbone", backbone, "--method", method,
        "--image-size", str(image_size), "--batch-size", str(batch_size), "--num-classes", str(num_classes),
        "--width-mult", str(width_mult), "--norm", norm,
    ]  # fmt: skip
    if not memory_lean:
        command.append("--plain")
    env = {**os.environ, **SUBPROCESS_ENV}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise TinyTLError(f"memory measurement of {backbone}/{method} failed: {' | '.join(tail)}")
    return json.loads(lines[-1])


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(description="measure one TinyTL training step in this process")
    parser.add_argument("--backbone", default="proxylessnas_mobile")
    parser.add_argument("--method", default="bias")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--norm", default="batch")
    parser.add_argument("--plain", action="store_true", help="plain Keras layers (no lean gradients)")
    parser.add_argument(
        "--inter-op-threads",
        type=int,
        default=1,
        help="TensorFlow inter-op threads (1: sequential op order, repeatable peaks)",
    )
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    memory_info("CPU:0")

    from tinyml_kit.tinytl.backbones import build_backbone
    from tinyml_kit.tinytl.memory_model import analyse
    from tinyml_kit.tinytl.transform import prepare

    backbone = build_backbone(args.backbone, args.image_size, width_mult=args.width_mult, weights=None)
    model = prepare(backbone, args.method, args.num_classes, norm=args.norm, memory_lean=not args.plain)
    del backbone
    compile_for_measurement(model)
    x, y = random_batch(model, args.batch_size)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    result = measure_training_step(model, x, y, warmup=1, device="CPU:0", restore_weights=False)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    step_s = time.perf_counter() - start
    modelled = analyse(model, args.batch_size)
    print(json.dumps({
        **vars(args), **result.as_dict(), "modelled_total": modelled["total"],
        "modelled_activations": modelled["activations"], "step_seconds": step_s, "first_step_seconds": first,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(_main())
