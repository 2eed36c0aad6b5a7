"""Keras 3 callbacks that keep a model inside a microcontroller's memory while it trains.

* :class:`MCUBudget` estimates int8 SRAM and flash from the architecture every epoch (no conversion;
  re-planned only when the architecture changes) and logs ``est_sram_bytes`` / ``est_flash_bytes``.
* :class:`ExportFirmware` converts the model to int8 .tflite, compiles it with tinyml-kit's engine
  and logs the real ``peak_sram_bytes`` / ``flash_bytes`` (at the last epoch or every N epochs).

Both write into the ``logs`` of ``on_epoch_end``, so the figures appear in ``History.history`` and in
TensorBoard (list these callbacks before ``keras.callbacks.TensorBoard``). Over budget they warn
(:class:`BudgetWarning`) or, with ``on_over_budget="stop"``, stop training.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tinyml_kit.errors import MissingDependencyError

TARGETS = ("host", "cortex-m4")
OVER_BUDGET_ACTIONS = ("warn", "stop")


class BudgetWarning(UserWarning):
    """A model exceeds the SRAM or flash budget given to a tinyml-kit callback."""


@dataclass
class ExportResult:
    """One export done by :class:`ExportFirmware`."""

    epoch: int  # 1-based epoch whose weights were exported
    tflite_path: Path
    project_dir: Path
    peak_sram_bytes: int
    flash_bytes: int
    seconds: float
    over_budget: list[str]


def _check_budget(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"Expected `{name}` to be a positive number of bytes or None. Received: {name}={value!r}"
        )
    return value


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Expected `{name}` in {choices}. Received: {name}={value!r}")
    return value


def _over_budget(figures: dict[str, int], budgets: dict[str, int | None]) -> list[str]:
    """Human-readable lines for every figure above its budget."""
    return [f"{key} = {figures[key]:,} B > budget {budget:,} B"
            for key, budget in budgets.items() if budget is not None and figures[key] > budget]


class _BudgetCallback(keras.callbacks.Callback):
    """Shared budget handling: warn, or warn and stop training."""

    def __init__(self, sram_budget: int | None, flash_budget: int | None, on_over_budget: str, verbose: int):
        super().__init__()
        self.sram_budget = _check_budget("sram_budget", sram_budget)
        self.flash_budget = _check_budget("flash_budget", flash_budget)
        self.on_over_budget = _check_choice("on_over_budget", on_over_budget, OVER_BUDGET_ACTIONS)
        self.verbose = verbose

    def _enforce(self, problems: list[str], when: str) -> None:
        if not problems:
            return
        action = "stopping training" if self.on_over_budget == "stop" else "training continues"
        warnings.warn(f"{type(self).__name__}: {when}: {'; '.join(problems)} ({action}).", BudgetWarning,
                      stacklevel=3)
        if self.on_over_budget == "stop":
            self.model.stop_training = True

    def _say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)


class MCUBudget(_BudgetCallback):
    """Logs an int8 SRAM/flash estimate of the architecture each epoch, without converting the model.

    The estimate (:func:`tinyml_kit.export.estimate.estimate_mcu_memory`) walks the Keras graph,
    sizes int8 activations and constants the way the TFLite converter lays them out, and places the
    activations with the engine's memory planner. It is recomputed only when the architecture
    changes, so its cost is a few milliseconds per training run.

    How close it is: flash matches the engine's model constants (exactly on the demo CNN). SRAM is a
    plan without in-place ops or kernel scratch, close to a TFLM-style greedy plan of the same ops;
    the engine's own plan, which lets ops overwrite dying inputs, is typically 0.5-1.1x of it
    (0.69x on the demo CNN). Use it to compare architectures and catch gross overruns;
    :class:`ExportFirmware` gives the real figure.

    Args:
        sram_budget: bytes of SRAM for activations, or None for no check.
        flash_budget: bytes of flash for weights (+ ``runtime_flash_bytes``), or None.
        input_shape: input shape without batch, for models with unknown input dimensions.
        runtime_flash_bytes: added to the flash estimate for the runtime's code (0 by default:
            the estimate is then the model's constants only).
        on_over_budget: ``"warn"`` (a :class:`BudgetWarning`) or ``"stop"`` (also stop training).
        verbose: print the estimate when it is (re)computed.

    Example:
        >>> model.fit(x, y, callbacks=[MCUBudget(sram_budget=64_000, flash_budget=256_000)])  # doctest: +SKIP
        >>> history.history["est_sram_bytes"]                                             # doctest: +SKIP
    """

    def __init__(self, sram_budget: int | None = None, flash_budget: int | None = None,
                 input_shape: tuple[int, ...] | None = None, *, runtime_flash_bytes: int = 0,
                 on_over_budget: str = "warn", verbose: int = 1):
        super().__init__(sram_budget, flash_budget, on_over_budget, verbose)
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        if runtime_flash_bytes < 0:
            raise ValueError(
                f"Expected `runtime_flash_bytes` >= 0. Received: runtime_flash_bytes={runtime_flash_bytes}"
            )
        self.runtime_flash_bytes = int(runtime_flash_bytes)
        self.estimate: Any = None  # the last MemoryEstimate
        self.seconds = 0.0  # total time spent estimating
        self._key: tuple | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._update()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._update()
        if logs is not None:
            logs["est_sram_bytes"] = self.estimate.sram_bytes
            logs["est_flash_bytes"] = self.estimate.flash_bytes

    def _update(self) -> None:
        from tinyml_kit.export.estimate import architecture_key, estimate_mcu_memory

        key = architecture_key(self.model)
        if key == self._key:
            return
        start = time.perf_counter()
        self.estimate = estimate_mcu_memory(self.model, self.input_shape,
                                            runtime_flash_bytes=self.runtime_flash_bytes)
        self.seconds += time.perf_counter() - start
        self._key = key
        est = self.estimate
        self._say(f"MCUBudget: est. SRAM {est.sram_bytes:,} B, flash {est.flash_bytes:,} B")
        figures = {"est_sram_bytes": self.estimate.sram_bytes, "est_flash_bytes": self.estimate.flash_bytes}
        self._enforce(_over_budget(figures, {"est_sram_bytes": self.sram_budget,
                                             "est_flash_bytes": self.flash_budget}), "architecture estimate")


class ExportFirmware(_BudgetCallback):
    """Exports int8 .tflite + firmware during training and logs their real memory figures.

    At the last epoch (or every ``every_n_epochs`` epochs, and at the end of training if the final
    weights were not exported yet) the model is converted with
    :func:`tinyml_kit.export.to_tflite`, compiled with :func:`tinyml_kit.engine.compile` into
    ``out_dir/epoch_NNN/`` and ``peak_sram_bytes`` / ``flash_bytes`` are added to that epoch's logs.
    Works the same inside ``QATModel.fit`` (the QAT model is exported).

    Args:
        out_dir: folder for the exports (``epoch_NNN/model_int8.tflite`` and ``epoch_NNN/firmware``).
        representative_data: calibration samples for int8 conversion (see ``to_tflite``).
        target: ``"cortex-m4"`` (arm-none-eabi-gcc) or ``"host"`` (the machine's gcc).
        sram_budget, flash_budget: bytes, or None for no check.
        every_n_epochs: export period in epochs, or None for the last epoch only.
        on_over_budget: ``"warn"`` (a :class:`BudgetWarning`) or ``"stop"`` (also stop training).
        verbose: print one line per export.

    Example:
        >>> cb = ExportFirmware("fw", x_train[:256], sram_budget=64 * 1024)   # doctest: +SKIP
        >>> history = model.fit(x_train, y_train, epochs=3, callbacks=[cb])   # doctest: +SKIP
        >>> history.history["peak_sram_bytes"], cb.results[-1].project_dir   # doctest: +SKIP
    """

    def __init__(self, out_dir: str | os.PathLike, representative_data: Any, target: str = "cortex-m4",
                 sram_budget: int | None = None, flash_budget: int | None = None,
                 every_n_epochs: int | None = None, on_over_budget: str = "warn", verbose: int = 1):
        super().__init__(sram_budget, flash_budget, on_over_budget, verbose)
        if representative_data is None:
            raise ValueError("Expected `representative_data` (a few hundred training inputs) for int8 "
                             "calibration. Received: representative_data=None")
        if every_n_epochs is not None and (not isinstance(every_n_epochs, int) or every_n_epochs < 1):
            raise ValueError(
                f"Expected `every_n_epochs` >= 1 or None. Received: every_n_epochs={every_n_epochs!r}"
            )
        self.out_dir = Path(out_dir)
        self.representative_data = representative_data
        self.target = _check_choice("target", target, TARGETS)
        self.every_n_epochs = every_n_epochs
        self.results: list[ExportResult] = []
        self.project: Any = None  # the last compiled engine Project
        self._last_epoch: int | None = None  # of the current fit
        self._exported_epoch: int | None = None  # of the current fit

    def on_train_begin(self, logs: dict | None = None) -> None:
        check_engine(self.target)
        self._last_epoch = self._exported_epoch = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._last_epoch = epoch
        if not self._due(epoch):
            return
        result = self._export(epoch)
        self._exported_epoch = epoch
        if logs is not None:
            logs["peak_sram_bytes"] = result.peak_sram_bytes
            logs["flash_bytes"] = result.flash_bytes
        self._enforce(result.over_budget, f"epoch {epoch + 1} firmware")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._last_epoch is None or self._exported_epoch == self._last_epoch:
            return  # nothing trained, or the final weights are exported already
        result = self._export(self._last_epoch)
        if result.over_budget:
            warnings.warn(f"ExportFirmware: final firmware: {'; '.join(result.over_budget)}.", BudgetWarning,
                          stacklevel=2)

    def _due(self, epoch: int) -> bool:
        last = self.params.get("epochs") if self.params else None
        if self.every_n_epochs is None:
            return last is not None and epoch + 1 == last
        return (epoch + 1) % self.every_n_epochs == 0 or (last is not None and epoch + 1 == last)

    def _export(self, epoch: int) -> ExportResult:
        from tinyml_kit import engine
        from tinyml_kit.export import to_tflite

        start = time.perf_counter()
        folder = self.out_dir.absolute() / f"epoch_{epoch + 1:03d}"
        model = getattr(self.model, "_tinyml_kit_qat", None) or self.model
        tflite_path = Path(to_tflite(model, self.representative_data, path=folder / "model_int8.tflite"))
        project_dir = folder / "firmware"
        if project_dir.exists():
            shutil.rmtree(project_dir)
        self.project = engine.compile(tflite_path, project_dir, target=self.target)
        sram, flash = int(self.project.peak_sram_bytes), int(self.project.flash_bytes)
        problems = _over_budget({"peak_sram_bytes": sram, "flash_bytes": flash},
                                {"peak_sram_bytes": self.sram_budget, "flash_bytes": self.flash_budget})
        result = ExportResult(epoch + 1, tflite_path, project_dir, sram, flash, time.perf_counter() - start,
                              problems)
        self.results.append(result)
        self._say(f"ExportFirmware: epoch {epoch + 1}: peak SRAM {sram:,} B, flash {flash:,} B "
                  f"({self.target}, {result.seconds:.1f} s) -> {project_dir}")
        return result


def check_engine(target: str) -> None:
    """Raise MissingDependencyError when the engine or the target's compiler is missing."""
    try:
        from tinyml_kit import engine

        engine.compile  # noqa: B018 (resolves the lazy import)
    except (ImportError, AttributeError) as exc:
        raise MissingDependencyError(
            f"tinyml-kit's engine is not available ({exc}); reinstall tinyml-kit and run `tinyml-kit doctor`."
        ) from exc
    compiler = "arm-none-eabi-gcc" if target == "cortex-m4" else "gcc"
    if shutil.which(compiler) is None:
        raise MissingDependencyError(
            f"{compiler} is needed to build {target} firmware; install it with "
            "`tinyml-kit doctor --install-system-deps` (see `tinyml-kit doctor`)."
        )


__all__ = ["BudgetWarning", "ExportFirmware", "ExportResult", "MCUBudget"]
