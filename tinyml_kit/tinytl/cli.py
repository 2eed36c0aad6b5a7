"""``tinyml-kit tinytl``: memory-efficient transfer learning (TinyTL) from the command line.

    tinyml-kit tinytl methods
    tinyml-kit tinytl memory --backbone proxylessnas_mobile --image-size 224 --batch-size 8 --paper
    tinyml-kit tinytl fit --backbone mobilenet_v2 --method lite_residual+bias --data fashion_mnist \\
        --image-size 96 --per-class 100 --epochs 10 --out runs/tinytl

TensorFlow is imported only inside ``run``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinyml_kit._atomic import save_model, write_text
from tinyml_kit.tinytl.errors import TinyTLError
from tinyml_kit.tinytl.methods import METHODS
from tinyml_kit.tinytl.train import AUGMENTATIONS

BACKBONE_NAMES = ("mobilenet_v2", "efficientnet_lite0", "proxylessnas_mobile")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tinytl_command", metavar="ACTION")
    parser.set_defaults(_tinytl_parser=parser)

    sub.add_parser("methods", help="list the transfer-learning methods and what each trains")

    memory = sub.add_parser("memory", help="TinyTL's modelled training memory of every method")
    memory.add_argument("--backbone", choices=BACKBONE_NAMES, default="proxylessnas_mobile")
    memory.add_argument("--image-size", type=int, default=224)
    memory.add_argument("--batch-size", type=int, default=8)
    memory.add_argument("--num-classes", type=int, default=102, help="classes of the new classifier")
    memory.add_argument("--norm", choices=("group", "batch"), default="group", help="lite residual norm")
    memory.add_argument(
        "--paper", action="store_true",
        help="the paper's network: lite residual branches on every method (frozen unless trained)",
    )  # fmt: skip
    memory.add_argument("--json", type=Path, help="also write the reports (per-layer rows included) here")

    fit = sub.add_parser("fit", help="transfer a pretrained backbone to a small dataset with one method")
    fit.add_argument("--backbone", choices=BACKBONE_NAMES, default="mobilenet_v2")
    fit.add_argument("--method", choices=tuple(METHODS), default="lite_residual+bias")
    fit.add_argument("--data", default="fashion_mnist", help="built-in dataset name or image folder path")
    fit.add_argument("--image-size", type=int, default=96)
    fit.add_argument("--per-class", type=int, default=100, help="training images per class")
    fit.add_argument("--test-per-class", type=int, default=100, help="test images per class (built-in data)")
    fit.add_argument("--epochs", type=int, default=10)
    fit.add_argument("--batch-size", type=int, default=8)
    fit.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: per method)")
    fit.add_argument("--label-smoothing", type=float, default=0.0)
    fit.add_argument("--augment", choices=AUGMENTATIONS, default="none",
                     help="training augmentation: random shift and zoom, optionally flips")  # fmt: skip
    fit.add_argument(
        "--norm",
        choices=("group", "batch"),
        default="batch",
        help="lite residual norm: batch folds into int8 convs, group is the paper's",
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--plain", action="store_true", help="plain Keras gradients (no memory-lean layers)")
    fit.add_argument("--out", type=Path, help="folder for model.keras and metrics.json")
    fit.add_argument("--tflite", action="store_true", help="also export an int8 model_int8.tflite into --out")
    fit.add_argument("--deploy", choices=("host", "cortex-m4"),
                     help="also export int8 and compile a firmware project into --out, checked bit-exact "
                          "against TFLM (needs --norm batch)")  # fmt: skip
    fit.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "tinytl_command", None)
    if command == "methods":
        return _methods()
    if command == "memory":
        return _memory(args)
    if command == "fit":
        return _fit(args)
    args._tinytl_parser.print_help()
    return 0


def _methods() -> int:
    width = max(len(name) for name in METHODS)
    for method in METHODS.values():
        print(f"{method.name:<{width}}  {method.paper_name:<13} {method.description}")
    return 0


def _memory(args: argparse.Namespace) -> int:
    from tinyml_kit.tinytl.backbones import build_backbone
    from tinyml_kit.tinytl.memory_model import MB, PUBLISHED_MB, training_memory

    backbone = build_backbone(args.backbone, args.image_size, weights=None)
    paper_setting = args.backbone == "proxylessnas_mobile" and args.image_size == 224 and args.batch_size == 8
    reports = {}
    print(
        f"{'method':<20} {'model MB':>9} {'activations':>12} {'parameters':>11}"
        + ("  paper MB" if paper_setting else "")
    )
    for name in METHODS:
        report = training_memory(
            backbone, name, args.batch_size, num_classes=args.num_classes, norm=args.norm,
            lite_residual=True if args.paper else None,
        )  # fmt: skip
        reports[name] = report
        paper = f"  {PUBLISHED_MB[name]:>8}" if paper_setting else ""
        print(f"{name:<20} {report['total'] / MB:>9.1f} {report['activations'] / MB:>12.1f} "
              f"{report['parameters'] / MB:>11.2f}{paper}")  # fmt: skip
    print("MB = 10^6 bytes; memory = peak stored activations x batch + parameters "
          "(trained 32-bit, frozen 8-bit)")  # fmt: skip
    if args.json:
        write_text(args.json, json.dumps(reports, indent=1))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from tinyml_kit.tinytl.memory_model import MB
    from tinyml_kit.tinytl.train import load_transfer_data, run_transfer

    if (args.tflite or args.deploy) and args.out is None:
        raise TinyTLError("--tflite and --deploy need --out (the folder to write model_int8.tflite into)")
    if args.deploy and args.norm != "batch":
        raise TinyTLError("--deploy needs --norm batch: group norm has no int8 TFLite form")
    data = load_transfer_data(args.data, args.image_size, args.per_class, args.test_per_class, seed=args.seed)
    print(
        f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test images, {data.num_classes} classes"
    )
    result = run_transfer(
        args.backbone, args.method, data, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, label_smoothing=args.label_smoothing, augment=args.augment, seed=args.seed,
        norm=args.norm, memory_lean=not args.plain, verbose=0 if args.quiet else 1,
        keep_model=args.out is not None,
    )  # fmt: skip
    peak = f"{result.measured_peak_bytes / MB:.1f} MB" if result.measured_peak_bytes else "n/a"
    print(f"{args.method}: test accuracy {result.accuracy:.4f}; memory model "
          f"{result.modelled_bytes / MB:.1f} MB, measured peak {peak}; "
          f"{1000 * result.seconds_per_step:.0f} ms/step")  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        save_model(result.model, args.out / "model.keras")
        summary = {**result.summary(), "backbone": args.backbone, "data": data.name, "epochs": args.epochs,
                   "batch_size": args.batch_size, "history": result.history}  # fmt: skip
        if args.deploy:
            summary["deploy"] = _deploy(result.model, data, args.backbone, args.out, args.deploy)
        elif args.tflite:
            summary["tflite"] = str(_export_int8(result.model, data, args.backbone, args.out))
        write_text(args.out / "metrics.json", json.dumps(summary, indent=1))
        print(f"wrote {args.out}")
    return 0


def _calibration_samples(data: Any, backbone: str) -> Any:
    from tinyml_kit.tinytl.backbones import get_backbone

    return get_backbone(backbone).preprocess(data.x_train[:200])


def _export_int8(model: Any, data: Any, backbone: str, out: Path) -> Path:
    from tinyml_kit.tinytl.deploy import TFLITE_NAME, export_int8

    return export_int8(model, _calibration_samples(data, backbone), out / TFLITE_NAME)


def _deploy(model: Any, data: Any, backbone: str, out: Path, target: str) -> dict[str, Any]:
    from tinyml_kit.tinytl.deploy import deploy

    result = deploy(model, _calibration_samples(data, backbone), out, target=target)
    project = result.project
    print(f"firmware project {project.out_dir}: peak SRAM {project.peak_sram_bytes:,} B, flash "
          f"{project.flash_bytes:,} B; outputs equal {result.reference.upper()}'s on "
          f"{result.checked_samples} inputs")  # fmt: skip
    return {"tflite": str(result.tflite), "project": str(project.out_dir), "target": target,
            "peak_sram_bytes": project.peak_sram_bytes, "flash_bytes": project.flash_bytes,
            "reference": result.reference, "checked_samples": result.checked_samples}  # fmt: skip
