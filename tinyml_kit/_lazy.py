"""Lazy package attributes (PEP 562), so importing a subpackage does not import TensorFlow or Keras."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# name -> module ("module" alone: a submodule of the package; dotted: an absolute module path), or
# (module, attribute) when the package exports the attribute under another name.
Exports = Mapping[str, str | tuple[str, str]]


def lazy_attributes(package: str, namespace: dict[str, Any], exports: Exports, submodules: Iterable[str] = ()
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``namespace`` (its ``globals()``) lists ``exports``.

    An export is imported on first access and cached in ``namespace``; ``submodules`` are importable as
    attributes too.
    """
    submodules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is not None:
            module, attr = target if isinstance(target, tuple) else (target, name)
            full = module if "." in module else f"{package}.{module}"
            value = getattr(importlib.import_module(full), attr)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | submodules)

    return __getattr__, __dir__
