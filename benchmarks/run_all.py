"""Run every benchmark script in this folder (``tox -e bench``), one after another, and summarise.

    python benchmarks/run_all.py                  # every benchmarks/*.py except this one
    python benchmarks/run_all.py engine_vs_tflm   # only the named ones (file stems)
    python benchmarks/run_all.py --list

Each script runs in its own process with its default arguments and writes its own section of
``benchmarks/RESULTS.md``. A failing script does not stop the others; the exit status is 1 when any
failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    """Benchmark scripts: ``benchmarks/*.py`` other than this runner and private helpers (``_*.py``)."""
    this = Path(__file__).name
    return sorted(p for p in HERE.glob("*.py") if p.name != this and not p.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmark file stems to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    available = {p.stem: p for p in scripts()}
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    selected = [available[n] for n in args.names] if args.names else list(available.values())

    summary = []
    for i, script in enumerate(selected, 1):
        print(f"=== [{i}/{len(selected)}] {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False).returncode
        summary.append((script.stem, code, time.perf_counter() - start))
    print("\n=== summary")
    for name, code, seconds in summary:
        print(f"{name:<28} {'ok' if code == 0 else f'FAILED (exit {code})':<18} {seconds:8.1f} s")
    return 1 if any(code for _, code, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
