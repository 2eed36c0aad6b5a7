"""The torch-free .pth reader: synthetic zip and legacy checkpoints, refusal of foreign globals."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyml_kit.zoo.errors import UnsafePickleError, ZooError
from tinyml_kit.zoo.torch_pickle import LEGACY_MAGIC_NUMBER, load_torch_checkpoint, load_torch_state_dict

STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("bool"): "BoolStorage",
}


class _Storage:
    def __init__(self, key: str, flat: np.ndarray, view: tuple[str, int, int] | None = None) -> None:
        self.key, self.flat, self.view = key, flat, view


class _Tensor:
    """Pickles like a torch tensor: a _rebuild_tensor_v2 call on a persistent storage."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


@pytest.fixture()
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Importable stand-ins for the torch names a checkpoint refers to (pickling only)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storage_types = {}
    for name in STORAGE_NAMES.values():
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        storage_types[name] = cls
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(storage_types=storage_types)


def _pickle(obj, fake_torch, legacy: bool) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2)

    def persistent_id(o):
        if not isinstance(o, _Storage):
            return None
        kind = fake_torch.storage_types[STORAGE_NAMES[o.flat.dtype]]
        if legacy:
            return ("storage", kind, o.key, "cpu", o.flat.size, o.view)
        return ("storage", kind, o.key, "cpu", o.flat.size)

    pickler.persistent_id = persistent_id
    pickler.dump(obj)
    return buffer.getvalue()


def _write_zip(path: Path, obj, storages: list[_Storage], fake_torch) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _pickle(obj, fake_torch, legacy=False))
        archive.writestr("archive/version", "3\n")
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", s.flat.tobytes())


def _write_legacy(path: Path, obj, storages: list[_Storage], fake_torch) -> None:
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(_pickle(obj, fake_torch, legacy=True))
        keys = sorted(s.key for s in storages)
        pickle.dump(keys, f, protocol=2)
        by_key = {s.key: s for s in storages}
        for key in keys:
            f.write(struct.pack("<q", by_key[key].flat.size) + by_key[key].flat.tobytes())


def _sample_state(fake_torch):
    conv = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    s_conv = _Storage("0", np.concatenate([np.float32([-1, -2]), conv.ravel()]))  # offset 2 into the storage
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    s_fc = _Storage("1", base.ravel())
    s_half = _Storage("2", np.float16([0.5, 1.5, -2.0]))
    s_step = _Storage("3", np.int64([7]))
    s_mask = _Storage("4", np.array([True, False]))
    state = collections.OrderedDict(
        [
            ("conv.weight", _Tensor(s_conv, 2, (2, 3, 3, 3), (27, 9, 3, 1))),
            ("fc.weight_t", _Tensor(s_fc, 0, (4, 3), (1, 4))),  # a transposed (non-contiguous) view
            ("half", _Tensor(s_half, 0, (3,), (1,))),
            ("bn.num_batches_tracked", _Tensor(s_step, 0, (), ())),
            ("mask", _Tensor(s_mask, 0, (2,), (1,))),
        ]
    )
    expected = {
        "conv.weight": conv,
        "fc.weight_t": base.T,
        "half": np.float16([0.5, 1.5, -2.0]),
        "bn.num_batches_tracked": np.int64(7),
        "mask": np.array([True, False]),
    }
    return state, [s_conv, s_fc, s_half, s_step, s_mask], expected


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_synthetic_checkpoint_round_trip(tmp_path, fake_torch, legacy):
    state, storages, expected = _sample_state(fake_torch)
    path = tmp_path / "ckpt.pth"
    (_write_legacy if legacy else _write_zip)(path, state, storages, fake_torch)
    loaded = load_torch_state_dict(path)
    assert list(loaded) == list(expected)
    for key, want in expected.items():
        got = loaded[key]
        assert isinstance(got, np.ndarray), key
        assert got.dtype == np.asarray(want).dtype, key
        np.testing.assert_array_equal(got, want)
        assert got.flags.c_contiguous


def test_legacy_storage_view(tmp_path, fake_torch):
    root = _Storage("9", np.arange(10, dtype=np.float32), view=("9v", 4, 3))
    _write_legacy(tmp_path / "v.pth", {"w": _Tensor(root, 1, (2,), (1,))}, [root], fake_torch)
    np.testing.assert_array_equal(load_torch_state_dict(tmp_path / "v.pth")["w"], [5.0, 6.0])


def test_wrapped_state_dict_is_unwrapped(tmp_path, fake_torch):
    state, storages, expected = _sample_state(fake_torch)
    _write_zip(tmp_path / "w.pth", {"state_dict": state, "epoch": 3}, storages, fake_torch)
    assert set(load_torch_state_dict(tmp_path / "w.pth")) == set(expected)


def test_foreign_global_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps((os.system, ("echo pwned",)), protocol=2))
    with pytest.raises(UnsafePickleError, match="system"):
        load_torch_checkpoint(path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(
        pickle.dumps(LEGACY_MAGIC_NUMBER) + pickle.dumps(1001) + pickle.dumps({}) + pickle.dumps(Evil())
    )
    with pytest.raises(UnsafePickleError, match="not a tensor or plain container"):
        load_torch_checkpoint(legacy)


def test_truncated_and_foreign_files_raise_zoo_errors(tmp_path, fake_torch):
    state, storages, _ = _sample_state(fake_torch)
    path = tmp_path / "cut.pth"
    _write_legacy(path, state, storages, fake_torch)
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ZooError, match="storage"):
        load_torch_state_dict(path)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ZooError):
        load_torch_state_dict(tmp_path / "text.pth")
    with pytest.raises(ZooError, match="does not exist"):
        load_torch_state_dict(tmp_path / "missing.pth")


def test_real_efficientnet_lite0_checkpoint():
    from tinyml_kit.zoo.efficientnet_lite import weights_path

    try:
        path = weights_path()
    except ZooError as exc:
        pytest.skip(str(exc))
    state = load_torch_state_dict(path)
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    params = sum(v.size for k, v in state.items() if "running" not in k and "num_batches" not in k)
    assert params == 4_652_008  # published EfficientNet-Lite0 size: 4.652 M
