"""Sources on the real packaged data: status, pinned checksums, errors, and a TensorFlow-free import."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyml_kit.data import sources
from tinyml_kit.data.errors import ChecksumMismatchError, DatasetError, DatasetNotFoundError
from tinyml_kit.errors import MissingDependencyError, TinymlKitError

FASHION_DIR = sources.FASHION_DEFAULT_DIR


@pytest.fixture(autouse=True, scope="module")
def isolated_cache(tmp_path_factory):
    """A private cache for this module (set before any module-scoped fixture loads data)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYML_KIT_HOME", str(tmp_path_factory.mktemp("tk-home-sources")))
        mp.delenv(sources.FASHION_DIR_ENV, raising=False)
        yield


@pytest.fixture
def fashion_test_copy(tmp_path):
    """A private copy of the Fashion-MNIST test-split files (skips when the Debian package is absent)."""
    if not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed at {FASHION_DIR} (Debian package dataset-fashion-mnist)")
    for name in sources.FASHION_FILES["test"]:
        shutil.copyfile(FASHION_DIR / name, tmp_path / name)
    return tmp_path


def test_import_does_not_load_tensorflow_or_sklearn():
    code = (
        "import sys, tinyml_kit.data.sources, tinyml_kit.data.cli, tinyml_kit.doctor\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_all_sources_report_status_with_detail_and_fix():
    by_name = {s.name: s for s in sources.all_sources()}
    assert list(by_name) == ["fashion_mnist", "mnist", "digits"]
    assert by_name["fashion_mnist"].required and by_name["digits"].required
    assert not by_name["mnist"].required
    for source in by_name.values():
        status = source.status()
        assert isinstance(status.ok, bool) and status.detail
        if not status.ok:
            assert status.fix
    digits = by_name["digits"].status()
    assert digits.ok and "scikit-learn" in digits.detail and "digits.csv.gz" in digits.detail


def test_fashion_status_verifies_the_installed_debian_files():
    if not FASHION_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST not installed at {FASHION_DIR} (Debian package dataset-fashion-mnist)")
    status = sources.FashionMnistDebian().status()
    assert status.ok, status
    assert str(FASHION_DIR) in status.detail and "sha256 verified" in status.detail


def test_fashion_pinned_checksums_match_the_files(fashion_test_copy):
    source = sources.FashionMnistDebian(fashion_test_copy)
    for name in sources.FASHION_FILES["test"]:
        assert source.verify(name) == sources.FASHION_SHA256[name][0]


def test_corrupted_copy_raises_checksum_mismatch_naming_the_file(fashion_test_copy):
    labels = fashion_test_copy / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(labels.read_bytes())
    data[-20] ^= 0xFF  # one flipped byte inside the compressed stream
    labels.write_bytes(bytes(data))
    source = sources.FashionMnistDebian(fashion_test_copy)
    with pytest.raises(ChecksumMismatchError, match=r"t10k-labels-idx1-ubyte\.gz") as info:
        source.load_split("test")
    assert "expected " + sources.FASHION_SHA256[labels.name][0] in str(info.value)
    status = source.status()
    assert not status.ok and "checksum mismatch" in status.detail and status.fix


def test_recompressed_copy_with_identical_content_is_accepted(fashion_test_copy, monkeypatch):
    labels = fashion_test_copy / "t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(content, compresslevel=1, mtime=0))  # other bytes, same content
    monkeypatch.setenv(sources.FASHION_DIR_ENV, str(fashion_test_copy))
    source = sources.get_source("fashion_mnist")
    assert source.root == fashion_test_copy
    x, y = source.load_split("test")
    assert x.shape == (10000, 28, 28, 1) and np.bincount(y).tolist() == [1000] * 10


def test_missing_fashion_files_name_the_debian_package(tmp_path):
    source = sources.FashionMnistDebian(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist") as info:
        source.load_split("train")
    assert isinstance(info.value, MissingDependencyError)
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    status = source.status()
    assert not status.ok and "missing" in status.detail
    assert "apt-get install" in sources.FashionMnistDebian(FASHION_DIR).fix


def test_read_idx_rejects_a_truncated_file(tmp_path):
    header = bytes([0, 0, 8, 3]) + np.array([2, 28, 28], dtype=">u4").tobytes()
    good = header + bytes(2 * 28 * 28)
    assert sources.read_idx(good, tmp_path / "x").shape == (2, 28, 28)
    with pytest.raises(DatasetError, match="needs"):
        sources.read_idx(good[:-1], tmp_path / "x")
    with pytest.raises(DatasetError, match="magic"):
        sources.read_idx(b"\x1f\x8b\x08\x00" + good[4:], tmp_path / "x")


def test_unknown_names_list_the_valid_choices():
    with pytest.raises(DatasetError, match="fashion_mnist, mnist, digits") as info:
        sources.get_source("cifar10")
    assert isinstance(info.value, TinymlKitError)
    assert sources.canonical_name("Fashion-MNIST") == "fashion_mnist"
    with pytest.raises(DatasetError, match="train, test"):
        sources.get_source("digits").load_split("validation")


def test_a_damaged_array_cache_is_rebuilt():
    from tinyml_kit._paths import cache_dir

    x, y = sources.get_source("digits").load_split("test")
    (cached,) = (cache_dir() / "datasets" / "sklearn-digits").glob("digits-*.npz")
    cached.write_bytes(b"PK\x03\x04 truncated")
    x2, y2 = sources.get_source("digits").load_split("test")
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert cached.stat().st_size > 1000
