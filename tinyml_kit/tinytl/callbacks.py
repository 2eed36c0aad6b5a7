"""Keras callbacks that report TinyTL training memory and step time while a model trains."""

from __future__ import annotations

import time
from typing import Any

import keras

from tinyml_kit.tinytl.memory_model import MB


@keras.saving.register_keras_serializable(package="tinyml_kit")
class TrainingMemoryMonitor(keras.callbacks.Callback):
    """Logs modelled and measured training memory (MB = 10^6 bytes) at the end of every epoch.

    * ``memory_model_mb``: TinyTL's cost model of the model as configured
      (:func:`~tinyml_kit.tinytl.training_memory` with ``method=None``) at ``batch_size``.
    * ``memory_peak_mb``: the largest allocator peak measured during the epoch's training steps
      (``tf.config.experimental.get_memory_info``; weights, optimizer state and input batch included).
    * ``memory_step_mb``: the largest ``peak - bytes in use before the step``, i.e. what the steps
      themselves allocated (activations kept for backward, gradients, temporaries).

    Measurement resets TensorFlow's peak counter before each measured batch, so do not combine it
    with other code that relies on that counter. The figures also go to ``History.history``. With
    TensorFlow's default x86 CPU allocator, tensors under 256 KiB escape the statistics; set
    ``TF_CPU_ALLOCATOR_USE_BFC=true`` before TensorFlow starts to count them (see
    :mod:`tinyml_kit.tinytl.measure`, which also explains why peaks vary between processes).

    Args:
        batch_size: the training batch size (for the cost model).
        every: measure every ``every``-th batch (1 = all; the first batch of training is skipped
            because it includes tracing).
        device: ``"CPU:0"``, ``"GPU:0"``...; default: the first GPU if any, else the CPU.
        verbose: print the figures after each epoch.

    Example:
    >>> monitor = TrainingMemoryMonitor(batch_size=8)                       # doctest: +SKIP
    >>> history = model.fit(x, y, batch_size=8, callbacks=[monitor])        # doctest: +SKIP
    >>> history.history["memory_peak_mb"]                                   # doctest: +SKIP
    """

    def __init__(
        self, batch_size: int, every: int = 1, device: str | None = None, verbose: bool = False
    ) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"Expected `batch_size` to be a positive integer. Received: batch_size={batch_size!r}"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Expected `every` to be a positive integer. Received: every={every!r}")
        self.batch_size = batch_size
        self.every = every
        self.device = device
        self.verbose = verbose
        self.modelled: dict[str, Any] | None = None
        self._resident: int | None = None
        self._steps_seen = 0
        self._peak = 0
        self._step = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        from tinyml_kit.tinytl.measure import default_device
        from tinyml_kit.tinytl.memory_model import analyse

        self.device = self.device or default_device()
        self.modelled = analyse(self.model, self.batch_size)
        self._steps_seen = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._peak = self._step = 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        from tinyml_kit.tinytl.measure import reset_peak

        measure = self._steps_seen > 0 and self._steps_seen % self.every == 0
        self._resident = reset_peak(self.device) if measure else None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        from tinyml_kit.tinytl.measure import memory_info

        self._steps_seen += 1
        if self._resident is None:
            return
        peak = int(memory_info(self.device)["peak"])
        self._peak = max(self._peak, peak)
        self._step = max(self._step, peak - self._resident)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or self.modelled is None:
            return
        logs["memory_model_mb"] = self.modelled["total"] / MB
        if self._peak:
            logs["memory_peak_mb"] = self._peak / MB
            logs["memory_step_mb"] = self._step / MB
        if self.verbose:
            measured = (
                f", measured peak {self._peak / MB:.1f} MB (step {self._step / MB:.1f})" if self._peak else ""
            )
            print(f"epoch {epoch + 1}: modelled {logs['memory_model_mb']:.1f} MB{measured}")

    def get_config(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "every": self.every,
            "device": self.device,
            "verbose": self.verbose,
        }


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every training batch after the first (``seconds_per_step``)."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: list[float] = []
        self._start = 0.0
        self._first = True

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._first:
            self._first = False
            return
        self.durations.append(time.perf_counter() - self._start)

    @property
    def seconds_per_step(self) -> float:
        """Median batch time (seconds), or NaN before two batches ran."""
        if not self.durations:
            return float("nan")
        ordered = sorted(self.durations)
        return ordered[len(ordered) // 2]
