"""TinyEngine-style compiler: int8 ``.tflite`` -> self-contained C project, bit-exact with TFLM.

Pipeline (one module per stage, data flowing one way)::

    reader.read_tflite -> passes.run_passes -> lowering.lower_op -> planner.plan -> codegen -> project

``compile(path, out_dir, target="host"|"cortex-m4", patch=False|True|PatchConfig(...))`` runs it all and
returns a :class:`Project`
that can build and run the firmware. Heavy modules are imported on first use, so importing this
package stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "compile": ("tinyml_kit.engine.project", "compile"),
    "Project": ("tinyml_kit.engine.project", "Project"),
    "PatchConfig": ("tinyml_kit.engine.patch", "PatchConfig"),
    "read_tflite": ("tinyml_kit.engine.reader", "read_tflite"),
}

__all__ = ["PatchConfig", "Project", "compile", "read_tflite"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'tinyml_kit.engine' has no attribute {name!r}")
    value = getattr(import_module(target[0]), target[1])
    globals()[name] = value
    return value
