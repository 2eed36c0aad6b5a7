"""Cache helpers: checksums, atomic writes and ``.npz`` array caches keyed by source checksums."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyml_kit._atomic import atomic_write
from tinyml_kit._paths import cache_dir

# Bump when the conversion from source files to arrays changes, so old caches are not reused.
CONVERSION_VERSION = 1


def datasets_cache_dir(*parts: str) -> Path:
    """``cache_dir()/datasets/<parts...>``, created on demand."""
    path = cache_dir().joinpath("datasets", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to an uncompressed ``.npz`` atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy must not append ".npz" to the temp name
            np.savez(f, **arrays)

    # 0644: caches may be shared between users via $TINYML_KIT_HOME
    return atomic_write(path, write, mode=0o644)


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """Arrays of a cached ``.npz``, or ``None`` when it is absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def cache_key(*checksums: str) -> str:
    """A short key combining source checksums and the conversion version."""
    joined = "|".join((f"v{CONVERSION_VERSION}", *checksums))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays from the ``.npz`` at ``path``; on a miss, ``build()`` them and cache them there."""
    arrays = load_arrays(path)
    if arrays is None:
        arrays = build()
        save_arrays(path, arrays)
    return arrays
