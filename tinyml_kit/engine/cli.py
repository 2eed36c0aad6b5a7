"""``tinyml-kit engine``: compile an int8 .tflite into a C project, run it, benchmark it against TFLM.

    tinyml-kit engine compile MODEL -o DIR [--target host|cortex-m4] [--patch [--patches N] [--split-op K]]
    tinyml-kit engine run DIR --input x.npy [--input x2.npy] --output y.npy [--target ...]
    tinyml-kit engine bench MODEL... [--target ...] [--inputs N] [--seed S] [--json]

Nothing heavy is imported before a subcommand runs (no TensorFlow at all: the engine reads flatbuffers
itself and TFLM runs in a worker process).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from tinyml_kit.engine.errors import EngineError

TARGETS = ("host", "cortex-m4")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="engine_command", metavar="ACTION", required=True)

    p = sub.add_parser("compile", help="compile MODEL into a C project and print its memory figures")
    p.add_argument("model", type=Path, help="int8 .tflite file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="project folder to write")
    p.add_argument("--target", choices=TARGETS, default="host",
                   help="host (gcc) or cortex-m4 (QEMU mps2-an386)")
    p.add_argument("--patch", action="store_true",
                   help="run the first stage patch by patch (MCUNetV2): split and grid chosen to minimise "
                        "peak SRAM within --max-mac-overhead; --patches/--split-op fix them")
    p.add_argument("--patches", type=int, default=None, metavar="N", help="N x N patches (implies --patch)")
    p.add_argument("--split-op", type=int, default=None, metavar="K",
                   help="last op (TFLite operator index) of the patch stage (implies --patch)")
    p.add_argument("--max-mac-overhead", type=float, default=0.2, metavar="F",
                   help="bound on the recomputed MACs when choosing, as a fraction (default 0.2)")

    p = sub.add_parser("run", help="run a compiled project on inputs from .npy files")
    p.add_argument("project", type=Path, metavar="DIR", help="folder written by `engine compile`")
    p.add_argument("--input", type=Path, action="append", required=True, metavar="X.npy",
                   help="one sample, or a batch on a leading axis; repeat once per model input")
    p.add_argument("--output", type=Path, required=True, metavar="Y.npy",
                   help=".npy for single-output models, .npz (out0, out1...) otherwise")
    p.add_argument("--target", choices=TARGETS, default=None, help="default: the project's target")

    p = sub.add_parser("bench", help="compile, run and compare MODELs with TFLM (memory, flash, speed); "
                       "exit status 1 when a model fails or is not bit-exact")
    p.add_argument("models", type=Path, nargs="+", metavar="MODEL")
    p.add_argument("--target", choices=TARGETS, default="host")
    p.add_argument("--inputs", type=int, default=20, metavar="N", help="random inputs per model (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object per model per line")


def run(args: argparse.Namespace) -> int:
    action = {"compile": _compile, "run": _run, "bench": _bench}[args.engine_command]
    return action(args)


# --------------------------------------------------------------------------- compile


def _kib(n: int | None) -> str:
    return "-" if n is None else f"{n:,} B ({n / 1024:.1f} KiB)"


def _compile(args: argparse.Namespace) -> int:
    from tinyml_kit.engine import PatchConfig
    from tinyml_kit.engine import compile as compile_model
    from tinyml_kit.engine.bench import greedy_tflm_like_bytes

    patch: PatchConfig | None = None
    if args.patch or args.patches is not None or args.split_op is not None:
        patch = PatchConfig(n_patches=args.patches, split_op=args.split_op,
                            max_mac_overhead=args.max_mac_overhead)
    project = compile_model(args.model, args.output, target=args.target, patch=patch)
    greedy = greedy_tflm_like_bytes(project)
    layers = project.layer_by_layer_peak_sram_bytes
    saving = f"  (ours {100.0 * (layers - greedy) / greedy:+.1f}%)" if greedy else ""
    flash_what = "text + data of the ELF" if args.target == "cortex-m4" else "constant data"
    print(f"compiled {args.model} -> {args.output} (target {args.target})")
    print(f"  peak SRAM (arena)    {_kib(project.peak_sram_bytes)}")
    report = project.patch
    if report is not None:
        print(f"    layer by layer     {_kib(layers)}")
        if report["applied"]:
            rows, cols = report["grid"]
            print(f"    patch by patch     {_kib(project.peak_sram_bytes)}  [ops #{report['first_op']}.."
                  f"#{report['split_op']} in {rows}x{cols} patches: stage "
                  f"{_kib(report['stage_peak_bytes'])}, rest {_kib(report['rest_peak_bytes'])}; "
                  f"+{100.0 * report['mac_overhead']:.1f}% MACs]")
        else:
            print(f"    patch by patch     not used: {report['reason']}")
    print(f"  lower bound          {_kib(project.lower_bound_bytes)}")
    print(f"  TFLM-style greedy    {_kib(greedy)}{saving}")
    print(f"  flash                {_kib(project.flash_bytes)}  [{flash_what}]")
    print(f"  ops {len(project.manifest.get('calls', []))}, MACs {int(project.manifest.get('macs', 0)):,}")
    return 0


# --------------------------------------------------------------------------- run


def _load_array(path: Path) -> Any:
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read input {path}: {exc}; pass a .npy file written by numpy.save") \
            from None


def _split_samples(arrays: list[Any], details: list[dict[str, Any]]) -> list[list[Any]]:
    """Per-input arrays (each one sample or a batch on a leading axis) -> samples of per-input arrays."""
    counts = []
    for array, d in zip(arrays, details, strict=True):
        size = math.prod(d["shape"])
        if array.size == size:
            counts.append(None)  # a single sample
        elif array.ndim >= 1 and array.shape[0] > 0 and array[0].size == size:
            counts.append(array.shape[0])
        else:
            raise EngineError(f"input '{d['name']}' needs {size} values per sample (shape {d['shape']}); the "
                              f"array of shape {list(array.shape)} is neither one sample nor a batch of them")
    batches = {c for c in counts if c is not None}
    if len(batches) > 1:
        raise EngineError(f"the input arrays hold different numbers of samples: {sorted(batches)}")
    if not batches:
        return [list(arrays)]
    n = batches.pop()
    return [[a if c is None else a[i] for a, c in zip(arrays, counts, strict=True)] for i in range(n)]


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from tinyml_kit.engine import Project

    project = Project.load(args.project)
    details = project.input_details
    if len(args.input) != len(details):
        names = ", ".join(d["name"] for d in details)
        raise EngineError(f"the model has {len(details)} input(s) ({names}); pass --input once for each, "
                          f"in that order (got {len(args.input)})")
    arrays = [_load_array(p) for p in args.input]
    single = all(a.size == math.prod(d["shape"]) for a, d in zip(arrays, details, strict=True))
    outputs = project.run_many(_split_samples(arrays, details), target=args.target)
    n_out = len(project.output_details)
    stacked = [np.stack([sample[k] for sample in outputs]) if not single else outputs[0][k]
               for k in range(n_out)]
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    if n_out == 1 and out.suffix != ".npz":
        np.save(tmp, stacked[0])
    elif out.suffix == ".npz":
        np.savez(tmp, **{f"out{k}": y for k, y in enumerate(stacked)})
    else:
        raise EngineError(f"the model has {n_out} outputs: pass --output with a .npz name (got {out})")
    tmp.replace(out)
    shapes = ", ".join(str(list(y.shape)) for y in stacked)
    print(f"wrote {out}: {len(outputs)} sample(s), output shape(s) {shapes}")
    return 0


# --------------------------------------------------------------------------- bench


def _bench(args: argparse.Namespace) -> int:
    from tinyml_kit.engine.bench import bench

    results = []
    status = None
    if not args.json:
        from rich.console import Console

        status = Console(stderr=True).status("")
        status.start()
    try:
        for i, model in enumerate(args.models, 1):
            if status is not None:
                status.update(f"[{i}/{len(args.models)}] {model.name}: compiling, running, comparing "
                              "with TFLM")
            result = bench(model, target=args.target, n_inputs=args.inputs, seed=args.seed)
            results.append(result)
            if args.json:
                print(json.dumps(result), flush=True)
    finally:
        if status is not None:
            status.stop()
    if not args.json:
        _print_table(results)
    failed = [r for r in results if r["error"] or r["bit_exact"] is False]
    return 1 if failed else 0


def _fmt_bytes(n: Any) -> str:
    return "-" if n is None else f"{n:,}"


def _print_table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tinyml-kit engine vs TFLM", title_justify="left")
    for name in ("model", "ref", "bit-exact", "peak B", "bound B", "greedy B", "TFLM arena B",
                 "ours/TFLM", "patch B", "patch/TFLM", "+MACs", "flash B", "MACs", "host speedup",
                 "QEMU instr", "MACs/instr"):
        table.add_column(name, justify="left" if name in ("model", "ref") else "right",
                         no_wrap=name == "model")
    for r in results:
        ratio = (f"{r['peak_sram_bytes'] / r['tflm_arena_bytes']:.2f}"
                 if r["peak_sram_bytes"] is not None and r["tflm_arena_bytes"] else "-")
        exact = {True: "[green]yes[/green]", False: f"[red]no ({r['mismatched_samples']})[/red]"}.get(
            r["bit_exact"], "-")
        table.add_row(
            r["model"], r["reference"] or "-", exact, _fmt_bytes(r["peak_sram_bytes"]),
            _fmt_bytes(r["lower_bound_bytes"]), _fmt_bytes(r["greedy_tflm_like_bytes"]),
            _fmt_bytes(r["tflm_arena_bytes"]), ratio, _fmt_bytes(r["patch_peak_sram_bytes"]),
            (f"{r['patch_peak_sram_bytes'] / r['tflm_arena_bytes']:.2f}"
             if r["patch_peak_sram_bytes"] is not None and r["tflm_arena_bytes"] else "-"),
            "-" if r["patch_mac_overhead"] is None else f"{100.0 * r['patch_mac_overhead']:.1f}%",
            _fmt_bytes(r["flash_bytes"]),
            "-" if r["macs"] is None else f"{r['macs']:,}",
            "-" if r["host_speedup_vs_tflm"] is None else f"{r['host_speedup_vs_tflm']:.2f}x",
            "-" if r["qemu_instructions"] is None else f"{r['qemu_instructions']:,.0f}",
            "-" if r["qemu_macs_per_instruction"] is None else f"{r['qemu_macs_per_instruction']:.3f}",
        )
    console = Console()
    if console.width < 190 and not console.is_terminal:  # piped: do not squeeze the table to 80 columns
        console = Console(width=190)
    console.print(table)
    for r in results:
        if r["error"]:
            print(f"{r['model']}: error: {r['error']}", file=sys.stderr)
