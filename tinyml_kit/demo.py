"""``tinyml-kit demo``: the toolkit's main path, end to end, offline, on a CPU in a few minutes.

1. train a small MobileNet-style CNN on the embedded Fashion-MNIST with the :class:`MCUBudget`
   (architecture estimate) and :class:`ExportFirmware` (int8 .tflite + engine firmware) callbacks;
2. measure float, LiteRT int8 and TFLite Micro int8 accuracy on held-out test images;
3. run the firmware (QEMU Cortex-M4, or the host build) on the same int8 inputs and compare every
   prediction and every output byte with LiteRT and TFLM (they must be identical);
4. report peak SRAM (ours vs TFLM's arena vs a TFLM-style greedy plan), flash, instructions per
   inference; save a live-memory plot and ``summary.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinyml_kit.errors import MissingDependencyError, TinymlKitError

DEFAULT_OUT = "tinyml-kit-demo"
_RUN_CHUNK = 50  # images per firmware run (one QEMU boot each)


@dataclass
class DemoConfig:
    """What to run; the command-line options map one to one."""

    epochs: int = 3
    train_size: int = 6000
    test_images: int = 500
    target: str = "cortex-m4"
    seed: int = 0
    out: str = DEFAULT_OUT
    batch_size: int = 64
    qat_epochs: int = 0

    def validate(self) -> DemoConfig:
        checks = [("epochs", self.epochs, 1), ("train_size", self.train_size, 10),
                  ("test_images", self.test_images, 1), ("batch_size", self.batch_size, 1),
                  ("qat_epochs", self.qat_epochs, 0)]
        for name, value, low in checks:
            if value < low:
                raise TinymlKitError(f"--{name.replace('_', '-')} must be >= {low}; got {value}.")
        if self.target not in ("host", "cortex-m4"):
            raise TinymlKitError(f"--target must be 'host' or 'cortex-m4'; got {self.target!r}.")
        return self


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DemoConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="training epochs (default: %(default)s)")
    parser.add_argument("--train-size", type=int, default=defaults.train_size,
                        help="training images, stratified over the 10 classes (default: %(default)s)")
    parser.add_argument("--test-images", type=int, default=defaults.test_images,
                        help="test images run through LiteRT, TFLM and the firmware (default: %(default)s)")
    parser.add_argument("--target", choices=("host", "cortex-m4"), default=defaults.target,
                        help="firmware target: QEMU Cortex-M4 or a native host build (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--out", default=defaults.out, help="output folder (default: ./%(default)s)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help=argparse.SUPPRESS)
    parser.add_argument("--qat-epochs", type=int, default=defaults.qat_epochs,
                        help="also train N more epochs with quantisation-aware training, and N more in float "
                             "followed by post-training quantisation, and compare their int8 accuracy "
                             "(default: %(default)s, off)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    config = DemoConfig(epochs=args.epochs, train_size=args.train_size, test_images=args.test_images,
                        target=args.target, seed=args.seed, out=args.out, batch_size=args.batch_size,
                        qat_epochs=args.qat_epochs).validate()
    console = Console()
    summary = run_demo(config, console)
    print_summary(summary, console)
    agree = summary["agreement"]
    if agree["device_vs_tflm_mismatches"] or not agree["raw_outputs_identical_tflm"]:
        console.print("[red]The firmware's outputs differ from TFLite Micro's (indices in summary.json); the "
                      "engine is meant to be bit-exact with TFLM: please report this as a bug.[/]")
        return 1
    if agree["device_vs_litert_mismatches"]:
        console.print("[yellow]Some predictions differ from LiteRT's while matching TFLite Micro's: "
                      "LiteRT's int8 softmax rounds differently from TFLM's (by 1-2 LSB), which can flip "
                      "near-ties.[/]")
    return 0


# ---------------------------------------------------------------------------------------------- pieces


def check_prerequisites(target: str) -> None:
    """Fail before training when the engine, a compiler or QEMU is missing (naming the fix)."""
    from tinyml_kit.callbacks import check_engine

    check_engine(target)
    if target == "cortex-m4" and shutil.which("qemu-system-arm") is None:
        raise MissingDependencyError("qemu-system-arm is needed to run Cortex-M4 firmware; install it with "
                                     "`tinyml-kit doctor --install-system-deps`, or run `tinyml-kit demo "
                                     "--target host`.")


def load_data(train_size: int, test_images: int, seed: int) -> tuple[Any, Any]:
    """Stratified Fashion-MNIST subsets (uint8 28x28x1 images) from the embedded dataset."""
    from tinyml_kit import data

    train = data.load("fashion_mnist", "train").subset(per_class=max(1, train_size // 10), seed=seed)
    test = data.load("fashion_mnist", "test")
    per_class = -(-test_images // 10)
    test = test.subset(per_class=per_class, seed=seed)
    return train, test.select(list(range(min(test_images, len(test)))))


def build_model(num_classes: int = 10, input_shape: tuple[int, int, int] = (28, 28, 1)) -> Any:
    """A small MobileNet-style CNN: conv, depthwise-separable blocks, a residual add, global pooling.

    About 7 k parameters and 0.39 M multiply-accumulates per 28x28 image; raw 0-255 pixels go in
    (``Rescaling`` is folded into the int8 input quantisation by the converter).
    """
    import keras

    layers = keras.layers

    def conv_bn(x: Any, filters: int, kernel: int, strides: int = 1, name: str = "") -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)

    def depthwise_bn(x: Any, strides: int, name: str) -> Any:
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)

    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = conv_bn(x, 16, 3, strides=2, name="stem")  # 14x14x16
    x = depthwise_bn(x, 1, "block1_dw")
    x = conv_bn(x, 32, 1, name="block1_pw")  # 14x14x32
    x = depthwise_bn(x, 2, "block2_dw")  # 7x7x32
    x = conv_bn(x, 48, 1, name="block2_pw")  # 7x7x48
    y = depthwise_bn(x, 1, "block3_dw")
    y = layers.Conv2D(48, 1, use_bias=False, name="block3_pw")(y)
    y = layers.BatchNormalization(momentum=0.9, name="block3_pw_bn")(y)
    x = layers.Add(name="block3_add")([x, y])
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.1, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="fashion_cnn")


def compile_model(model: Any) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


class _Stages:
    """A rich progress display with one bar per stage (or plain lines without a console)."""

    def __init__(self, console: Any):
        self.console = console
        self.progress = None
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=console, transient=False)

    def __enter__(self) -> _Stages:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def add(self, description: str, total: int) -> Any:
        return None if self.progress is None else self.progress.add_task(description, total=total)

    def advance(self, task: Any, amount: int = 1, description: str | None = None) -> None:
        if self.progress is not None and task is not None:
            kwargs = {"description": description} if description else {}
            self.progress.update(task, advance=amount, **kwargs)

    def log(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text)


def _progress_callback(stages: _Stages, task: Any, epochs: int) -> Any:
    import keras

    class TrainingProgress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            stages.advance(task)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            stages.log(f"  epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.3f}, "
                       f"accuracy {logs.get('accuracy', float('nan')):.3f}")

    return TrainingProgress()


def _device_predictions(project: Any, xq: Any, stages: _Stages, task: Any) -> tuple[Any, list[int]]:
    """Raw int8 outputs of the firmware for every image (chunks of images per QEMU boot)."""
    import numpy as np

    outputs, counts = [], []
    for start in range(0, len(xq), _RUN_CHUNK):
        chunk = list(xq[start:start + _RUN_CHUNK])
        results = project.run_many(chunk, timeout_s=600.0)
        outputs.extend(r[0].reshape(-1) for r in results)
        counts.extend(project.last_counts)
        stages.advance(task, len(chunk))
    return np.stack(outputs), counts


# ---------------------------------------------------------------------------------------------- demo


def run_demo(config: DemoConfig, console: Any = None) -> dict[str, Any]:
    """Run the whole demo and return the summary (also written to ``<out>/summary.json``)."""
    config.validate()
    check_prerequisites(config.target)
    import numpy as np

    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    with _Stages(console) as stages:
        task = stages.add("Loading Fashion-MNIST", 1)
        train, test = load_data(config.train_size, config.test_images, config.seed)
        stages.advance(task)
        lap("load_data")

        import keras

        from tinyml_kit.callbacks import ExportFirmware, MCUBudget
        from tinyml_kit.engine import Project
        from tinyml_kit.export import predict_tflite, quantize_input

        keras.utils.set_random_seed(config.seed)
        model = build_model(train.num_classes, train.image_shape)
        compile_model(model)
        steps = -(-len(train) // config.batch_size)
        task = stages.add(f"Training ({config.epochs} epochs, {len(train)} images)", steps * config.epochs)
        budget = MCUBudget(verbose=0)
        exporter = ExportFirmware(out / "training", train.x[:256], target=config.target, verbose=0)
        history = model.fit(train.x, train.y, epochs=config.epochs, batch_size=config.batch_size, verbose=0,
                            callbacks=[budget, exporter, _progress_callback(stages, task, config.epochs)])
        lap("train_and_export")
        final = exporter.results[-1]
        tflite_path = out / "model_int8.tflite"
        shutil.copyfile(final.tflite_path, tflite_path)
        firmware_dir = out / "firmware"
        if firmware_dir.exists():
            shutil.rmtree(firmware_dir)
        shutil.move(str(final.project_dir), str(firmware_dir))
        shutil.rmtree(out / "training", ignore_errors=True)
        project = Project.load(firmware_dir)
        _save_keras_atomically(model, out / "model_float.keras")

        task = stages.add("Float accuracy (Keras)", 1)
        float_probs = model.predict(test.x, verbose=0, batch_size=256)
        float_acc = float(np.mean(float_probs.argmax(-1) == test.y))
        stages.advance(task)
        lap("float_eval")

        xq = quantize_input(tflite_path, test.x)
        task = stages.add("int8 accuracy (LiteRT)", len(xq))
        litert_raw = predict_tflite(tflite_path, xq, raw=True, already_quantized=True,
                                    progress=lambda done, total: stages.advance(task))
        litert_raw = litert_raw.reshape(len(xq), -1)
        lap("litert")

        from tinyml_kit.engine import tflm

        task = stages.add("int8 accuracy (TFLite Micro)", 1)
        tflm_result = tflm.profile(tflite_path, list(xq), arena=True)
        tflm_raw = np.stack([np.asarray(o).reshape(-1) for o in tflm_result.outputs])
        stages.advance(task)
        lap("tflm")

        where = "QEMU Cortex-M4" if config.target == "cortex-m4" else "host build"
        task = stages.add(f"Firmware on {where}", len(xq))
        device_raw, counts = _device_predictions(project, xq, stages, task)
        lap("firmware")

        qat = None
        if config.qat_epochs:
            task = stages.add(f"QAT vs PTQ (+{config.qat_epochs} epochs each)", 2)
            qat = _qat_comparison(model, train, test, config, out, lambda: stages.advance(task))
            lap("qat")
        task = stages.add("Memory plot and summary", 1)
        summary = _summarise(config, out, train, test, history.history, budget, project, float_acc,
                             litert_raw, tflm_raw, device_raw, tflm_result.arena_bytes, counts, qat, timings)
        plot = _plot(project, out / "memory_per_op.png")
        summary["files"]["memory_plot"] = str(plot)
        lap("report")
        summary["timings_s"] = timings
        from tinyml_kit.export._io import atomic_write_text

        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        stages.advance(task)
    return summary


def _save_keras_atomically(model: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def _qat_comparison(model: Any, train: Any, test: Any, config: DemoConfig, out: Path,
                    advance: Any) -> dict[str, Any]:
    """``qat_epochs`` more epochs two ways, from the same float weights and learning rate: with QAT, and
    in float followed by post-training quantisation (the fair baseline). int8 accuracies by LiteRT."""
    import keras

    from tinyml_kit.export import evaluate_tflite, quantize_aware, to_tflite

    settings = {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    qat = quantize_aware(model, optimizer=keras.optimizers.Adam(5e-4), **settings)
    qat.fit(train.x, train.y, epochs=config.qat_epochs, batch_size=config.batch_size, verbose=0)
    qat_path = qat.to_tflite(train.x[:256], path=out / "model_qat_int8.tflite")
    advance()
    baseline = keras.models.clone_model(model)
    baseline.set_weights(model.get_weights())
    baseline.compile(optimizer=keras.optimizers.Adam(5e-4), **settings)
    baseline.fit(train.x, train.y, epochs=config.qat_epochs, batch_size=config.batch_size, verbose=0)
    ptq_path = to_tflite(baseline, train.x[:256], path=out / "model_ptq_more_epochs_int8.tflite")
    advance()
    return {"epochs": config.qat_epochs, "qat_int8_litert": evaluate_tflite(qat_path, test.x, test.y),
            "ptq_same_epochs_int8_litert": evaluate_tflite(ptq_path, test.x, test.y),
            "qat_tflite": str(qat_path), "ptq_same_epochs_tflite": str(ptq_path)}


def _summarise(config: DemoConfig, out: Path, train: Any, test: Any, history: dict, budget: Any, project: Any,
               float_acc: float, litert_raw: Any, tflm_raw: Any, device_raw: Any, tflm_arena: int | None,
               counts: list[int], qat: dict | None, timings: dict) -> dict[str, Any]:
    import numpy as np

    from tinyml_kit import __version__
    from tinyml_kit.engine.planner import greedy_tflm_like
    from tinyml_kit.engine.project import build_problem, lower_graph

    labels = np.asarray(test.y)
    pred = {name: raw.argmax(-1) for name, raw in
            (("litert", litert_raw), ("tflm", tflm_raw), ("device", device_raw))}
    mismatch_litert = np.flatnonzero(pred["device"] != pred["litert"]).tolist()
    mismatch_tflm = np.flatnonzero(pred["device"] != pred["tflm"]).tolist()
    problem = build_problem(project.graph, lower_graph(project.graph))
    greedy = greedy_tflm_like(problem)
    per_inference = float(np.mean(counts)) if counts else None
    performance: dict[str, Any] = {"macs_per_inference": int(project.manifest["macs"])}
    if config.target == "cortex-m4":
        performance["instructions_per_inference"] = per_inference
        if per_inference:
            performance["macs_per_instruction"] = round(project.manifest["macs"] / per_inference, 4)
    else:
        performance["host_ns_per_inference"] = per_inference
    summary: dict[str, Any] = {
        "tinyml_kit_version": __version__,
        "config": asdict(config),
        "dataset": {"name": "fashion_mnist", "train_images": len(train), "test_images": len(test)},
        "history": {k: [float(v) for v in vals] for k, vals in history.items()},
        "accuracy": {
            "float_keras": float_acc,
            "int8_litert": float(np.mean(pred["litert"] == labels)),
            "int8_tflm": float(np.mean(pred["tflm"] == labels)),
            "int8_device": float(np.mean(pred["device"] == labels)),
        },
        "agreement": {
            "device_vs_litert_mismatches": len(mismatch_litert),
            "device_vs_tflm_mismatches": len(mismatch_tflm),
            "mismatch_indices": sorted(set(mismatch_litert) | set(mismatch_tflm)),
            "raw_outputs_identical_tflm": bool(np.array_equal(device_raw, tflm_raw)),
            "raw_outputs_identical_litert": bool(np.array_equal(device_raw, litert_raw)),
            # LiteRT's int8 softmax differs from TFLM's by 1-2 LSB on some inputs; argmax rarely moves
            "litert_vs_tflm_differing_output_bytes": int(np.count_nonzero(litert_raw != tflm_raw)),
        },
        "memory": {
            "peak_sram_bytes": project.peak_sram_bytes,
            "lower_bound_bytes": project.lower_bound_bytes,
            "tflm_arena_bytes": tflm_arena,
            "tflm_like_greedy_plan_bytes": int(greedy.arena_bytes),
            "flash_bytes": project.flash_bytes,
            "model_constants_bytes": int(project.manifest["const_bytes"]),
            "tflite_bytes": (out / "model_int8.tflite").stat().st_size,
            "estimate_est_sram_bytes": budget.estimate.sram_bytes,
            "estimate_est_flash_bytes": budget.estimate.flash_bytes,
        },
        "performance": performance,
        "target": config.target,
        "files": {"out_dir": str(out), "tflite": str(out / "model_int8.tflite"),
                  "firmware": str(out / "firmware"), "keras_model": str(out / "model_float.keras"),
                  "summary": str(out / "summary.json")},
        "timings_s": timings,
    }
    if qat is not None:
        summary["accuracy"]["int8_litert_qat"] = qat["qat_int8_litert"]
        summary["accuracy"]["int8_litert_ptq_same_epochs"] = qat["ptq_same_epochs_int8_litert"]
        summary["qat"] = qat
    return summary


def _plot(project: Any, path: Path) -> Path:
    from tinyml_kit.engine.planner import greedy_tflm_like
    from tinyml_kit.engine.project import build_problem, lower_graph
    from tinyml_kit.engine.report import plot_live_memory

    problem = build_problem(project.graph, lower_graph(project.graph))
    names = [step.name for step in problem.steps]
    return plot_live_memory({"tinyml-kit": project.plan, "TFLM-style greedy": greedy_tflm_like(problem)},
                            names, path)


def print_summary(summary: dict[str, Any], console: Any) -> None:
    """A results table, then the output folder."""
    from rich.table import Table

    acc, mem, perf, agree = (summary[k] for k in ("accuracy", "memory", "performance", "agreement"))
    table = Table(title="tinyml-kit demo: Fashion-MNIST CNN on a microcontroller", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    n = summary["dataset"]["test_images"]
    table.add_row("float accuracy (Keras)", f"{acc['float_keras']:.2%}")
    table.add_row("int8 accuracy (LiteRT)", f"{acc['int8_litert']:.2%}")
    table.add_row("int8 accuracy (TFLite Micro)", f"{acc['int8_tflm']:.2%}")
    where = "QEMU Cortex-M4" if summary["target"] == "cortex-m4" else "host build"
    table.add_row(f"int8 accuracy (firmware, {where})", f"{acc['int8_device']:.2%}")
    if "int8_litert_qat" in acc:
        epochs = summary["qat"]["epochs"]
        table.add_row(f"int8 accuracy, +{epochs} epoch(s) with QAT (LiteRT)", f"{acc['int8_litert_qat']:.2%}")
        table.add_row(f"int8 accuracy, +{epochs} float epoch(s) then PTQ (LiteRT)",
                      f"{acc['int8_litert_ptq_same_epochs']:.2%}")
    same_litert = n - agree["device_vs_litert_mismatches"]
    table.add_row("firmware = LiteRT predictions", f"{'[green]' if same_litert == n else '[yellow]'}"
                                                    f"{same_litert}/{n}[/]")
    exact = agree["raw_outputs_identical_tflm"] and not agree["device_vs_tflm_mismatches"]
    table.add_row("firmware = TFLite Micro (predictions, output bytes)",
                  f"{'[green]' if exact else '[red]'}{n - agree['device_vs_tflm_mismatches']}/{n}, "
                  f"{'identical' if agree['raw_outputs_identical_tflm'] else 'DIFFERENT'}[/]")
    table.add_row("peak SRAM, tinyml-kit arena", f"{mem['peak_sram_bytes']:,} B")
    if mem["tflm_arena_bytes"] is not None:
        table.add_row("TFLite Micro arena (head + tail)", f"{mem['tflm_arena_bytes']:,} B")
    table.add_row("TFLM-style greedy plan of the same ops", f"{mem['tflm_like_greedy_plan_bytes']:,} B")
    table.add_row("MCUBudget estimate (before converting)", f"{mem['estimate_est_sram_bytes']:,} B")
    table.add_row("flash" + (" (firmware .text + .data)" if summary["target"] == "cortex-m4" else
                             " (model constants)"), f"{mem['flash_bytes']:,} B")
    if "instructions_per_inference" in perf:
        table.add_row("instructions per inference (QEMU)", f"{perf['instructions_per_inference']:,.0f}")
    if perf.get("host_ns_per_inference"):
        table.add_row("host time per inference", f"{perf['host_ns_per_inference'] / 1e3:,.1f} µs")
    table.add_row("multiply-accumulates per inference", f"{perf['macs_per_inference']:,}")
    console.print(table)
    console.print(f"Results saved in [bold]{summary['files']['out_dir']}[/] (summary.json, "
                  "memory_per_op.png, model_int8.tflite, firmware/).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinyml-kit demo")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
