"""TinyEngine-style compiler: int8 ``.tflite`` -> self-contained C project, bit-exact with TFLM.

Pipeline (one module per stage, data flowing one way)::

    reader.read_tflite -> passes.run_passes -> lowering.lower_op -> planner.plan -> codegen -> project

``compile(path, out_dir, target="host"|"cortex-m4", patch=False|True|PatchConfig(...))`` runs it all and
returns a :class:`Project`
that can build and run the firmware. Heavy modules are imported on first use, so importing this
package stays cheap for the CLI.
"""

from __future__ import annotations

from tinyml_kit._lazy import lazy_attributes

_LAZY = {
    "compile": ("tinyml_kit.engine.project", "compile"),
    "Project": ("tinyml_kit.engine.project", "Project"),
    "PatchConfig": ("tinyml_kit.engine.patch", "PatchConfig"),
    "read_tflite": ("tinyml_kit.engine.reader", "read_tflite"),
}

__all__ = ["PatchConfig", "Project", "compile", "read_tflite"]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
