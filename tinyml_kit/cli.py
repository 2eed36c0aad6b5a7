"""The ``tinyml-kit`` command line.

Each capability contributes a subcommand module exposing ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import TensorFlow only inside ``run`` so that
``tinyml-kit --help`` stays well under a second.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tinyml_kit import __version__
from tinyml_kit.errors import TinymlKitError

# name -> (module, one-line help). Modules are imported to build their parsers; keep them light.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("tinyml_kit.doctor", "check Python packages, system tools and datasets"),
    "demo": ("tinyml_kit.demo", "end-to-end: train, int8-convert, compile, run the firmware in QEMU"),
    "data": ("tinyml_kit.data.cli", "inspect and prepare the embedded datasets"),
    "engine": ("tinyml_kit.engine.cli", "compile an int8 .tflite into a C firmware project, run, bench"),
    "tinytl": ("tinyml_kit.tinytl.cli", "memory-efficient transfer learning (TinyTL): fit, memory model"),
    "diffaug": ("tinyml_kit.diffaug.cli", "train data-efficient GANs with DiffAugment; FID/KID scoring"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyml-kit",
        description="Tiny machine learning for Keras and TensorFlow Lite Micro (MCUNet, TinyTL, "
        "DiffAugment, SPVNAS, GCN-RL).",
    )
    parser.add_argument("--version", action="version", version=f"tinyml-kit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("tinyml_kit"):
                continue  # capability not present in this build
            raise
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) is noise on a CLI; users can override.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("tinyml-kit: interrupted", file=sys.stderr)
        return 130
    except TinymlKitError as exc:  # a readable message, not a traceback
        print(f"tinyml-kit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
