"""Read a PyTorch ``state_dict`` checkpoint (``.pth``/``.pt``) into NumPy arrays without importing torch.

Two on-disk formats exist:

* the zip format (torch >= 1.6): ``<root>/data.pkl`` is a pickle whose tensors point, through
  persistent ids ``("storage", StorageType, key, location, numel)``, at raw little-endian storages
  in ``<root>/data/<key>``;
* the legacy format (torch < 1.6): five pickles in a row (magic number, protocol version, system
  info, the object, the sorted storage keys), then for each key an ``int64`` element count followed
  by the raw storage bytes.

Unpickling runs code named by the file, so the unpickler here is closed: it resolves only tensor
rebuild functions, storage types and ``collections.OrderedDict``; any other global raises
:class:`~tinyml_kit.zoo.errors.UnsafePickleError` before anything is called.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tinyml_kit.zoo.errors import UnsafePickleError, ZooError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.<Name>Storage``: only its element dtype matters."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _StorageRef:
    """A storage named by a persistent id; ``data`` is filled once its bytes are read.

    A legacy storage *view* has no bytes of its own: it is ``numel`` elements of ``root`` from
    element ``view_offset`` on.
    """

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None
    root: _StorageRef | None = None
    view_offset: int = 0

    def array(self) -> np.ndarray:
        if self.root is not None:
            return self.root.array()[self.view_offset : self.view_offset + self.numel]
        if self.data is None:
            raise ZooError(f"storage '{self.key}' was referenced but its bytes were never read")
        return self.data


@dataclass
class _PendingTensor:
    """A tensor whose storage bytes may not be read yet (legacy files store them after the pickle)."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        flat = self.storage.array()
        item = flat.itemsize
        start = self.offset
        if not self.shape:
            return np.array(flat[start])
        view = np.lib.stride_tricks.as_strided(
            flat[start:], shape=self.shape, strides=tuple(s * item for s in self.stride), writeable=False
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage: _StorageRef, offset: int, size: tuple, stride: tuple, *_: Any) -> _PendingTensor:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])``."""
    if not isinstance(storage, _StorageRef):
        raise UnsafePickleError(f"a tensor's storage is a {type(storage).__name__}, expected a storage id")
    shape = tuple(int(s) for s in size)
    strides = tuple(int(s) for s in stride)
    if len(shape) != len(strides) or any(s < 0 for s in (*shape, *strides)) or offset < 0:
        raise ZooError(f"tensor with invalid layout: size={shape} stride={strides} offset={offset}")
    if all(shape):  # a tensor with a zero-length dimension reads nothing
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
        if last >= storage.numel:
            raise ZooError(
                f"tensor size={shape} stride={strides} offset={offset} reads past the end of storage "
                f"'{storage.key}' ({storage.numel} elements)"
            )
    return _PendingTensor(storage, int(offset), shape, strides)


def _rebuild_parameter(data: _PendingTensor, *_: Any) -> _PendingTensor:
    """``torch._utils._rebuild_parameter(data, requires_grad, hooks)``: a parameter is its data."""
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that knows only tensors, storages and plain containers."""

    def __init__(self, file: BinaryIO, storages: dict[str, _StorageRef], source: str) -> None:
        super().__init__(file)
        self._storages = storages
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise UnsafePickleError(
            f"{self._source} refers to '{module}.{name}', which is not a tensor or plain container; "
            "only state_dict checkpoints (tensors in dicts) can be read without torch. "
            "Save the model with torch.save(model.state_dict(), path)."
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafePickleError(f"{self._source}: unknown persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"{self._source}: storage '{key}' has unsupported type {storage_type!r}")
        ref = self._storages.get(key)
        if ref is None:
            ref = self._storages[key] = _StorageRef(key, storage_type.dtype, numel)
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return ref
        view_key, view_offset, view_numel = (str(view[0]), int(view[1]), int(view[2]))
        if view_offset < 0 or view_offset + view_numel > ref.numel:
            raise ZooError(f"{self._source}: storage view '{view_key}' lies outside storage '{key}'")
        return _StorageRef(view_key, ref.dtype, view_numel, root=ref, view_offset=view_offset)


def _finalise(obj: Any) -> Any:
    """Replace every pending tensor inside dicts/lists/tuples by its NumPy array."""
    if isinstance(obj, _PendingTensor):
        return obj.materialise()
    if isinstance(obj, dict):
        return {k: _finalise(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_finalise(v) for v in obj)
    return obj


def _read_raw(buffer: bytes, ref: _StorageRef, source: str) -> np.ndarray:
    expected = ref.numel * ref.dtype.itemsize
    if len(buffer) < expected:
        raise ZooError(f"{source}: storage '{ref.key}' holds {len(buffer)} bytes, expected {expected}")
    return np.frombuffer(buffer[:expected], dtype=ref.dtype)


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl_names = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl_names) != 1:
            raise ZooError(f"{path}: a torch zip checkpoint has one data.pkl, found {len(pkl_names)}")
        root = pkl_names[0][: -len("data.pkl")]
        storages: dict[str, _StorageRef] = {}
        obj = _RestrictedUnpickler(io.BytesIO(archive.read(pkl_names[0])), storages, str(path)).load()
        for key, ref in storages.items():
            member = f"{root}data/{key}"
            if member not in names:
                raise ZooError(f"{path}: storage '{key}' is referenced but '{member}' is missing")
            ref.data = _read_raw(archive.read(member), ref, str(path))
    return obj


def _load_legacy(path: Path) -> Any:
    source = str(path)
    with open(path, "rb") as f:
        magic = _RestrictedUnpickler(f, {}, source).load()
        if magic != LEGACY_MAGIC_NUMBER:
            raise ZooError(f"{path} is neither a torch zip checkpoint nor a legacy one (bad magic number)")
        version = _RestrictedUnpickler(f, {}, source).load()
        if version != 1001:
            raise ZooError(f"{path}: legacy checkpoint protocol {version} is not supported (expected 1001)")
        sys_info = _RestrictedUnpickler(f, {}, source).load()
        if not sys_info.get("little_endian", True):
            raise ZooError(f"{path} was saved on a big-endian machine; re-save it on a little-endian one")
        storages: dict[str, _StorageRef] = {}
        obj = _RestrictedUnpickler(f, storages, source).load()
        keys = _RestrictedUnpickler(f, {}, source).load()
        for key in keys:
            ref = storages.get(str(key))
            if ref is None:
                raise ZooError(f"{path}: storage key '{key}' is listed but no tensor uses it")
            header = f.read(8)
            if len(header) != 8:
                raise ZooError(f"{path} is truncated at storage '{key}'")
            (numel,) = struct.unpack("<q", header)
            if numel != ref.numel:
                raise ZooError(f"{path}: storage '{key}' holds {numel} elements, the pickle says {ref.numel}")
            ref.data = _read_raw(f.read(numel * ref.dtype.itemsize), ref, source)
    return obj


def load_torch_checkpoint(path: str | Path) -> Any:
    """Load a ``.pth`` file into plain Python containers holding NumPy arrays (no torch needed).

    Args:
        path: a checkpoint written by ``torch.save`` (zip or legacy format) that holds tensors in
            dicts/lists, e.g. a ``state_dict``.

    Returns:
        The saved object with every tensor replaced by a C-contiguous ``np.ndarray`` of the same
        dtype, shape and values (strides and storage offsets applied).

    Raises:
        UnsafePickleError: the file refers to any class or function other than tensor rebuilding.
        ZooError: the file is missing, truncated or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist")
    try:
        obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ZooError(f"{path} is not a readable torch checkpoint: {exc}") from exc
    return _finalise(obj)


def load_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Like :func:`load_torch_checkpoint`, but insists on a flat ``{name: array}`` mapping.

    A checkpoint that wraps the weights (``{"state_dict": {...}}`` or ``{"model": {...}}``) is
    unwrapped when that is the only dict inside.
    """
    obj = load_torch_checkpoint(path)
    if isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
        inner = [v for v in obj.values() if isinstance(v, dict)]
        if len(inner) == 1:
            obj = inner[0]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ZooError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return {str(k): v for k, v in obj.items()}
