"""Op lowerings. Importing this package registers every op module in it (one module per op family)."""

import pkgutil
from importlib import import_module

from tinyml_kit.engine.lowering.base import LOWERINGS, KernelCall, Overlap, lower_op, register_lowering

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        import_module(f"{__name__}.{_info.name}")

__all__ = ["LOWERINGS", "KernelCall", "Overlap", "lower_op", "register_lowering"]
