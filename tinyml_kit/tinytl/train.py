"""Transfer learning runs end to end: data, backbone, ``prepare``, ``fit``, evaluation, memory.

Used by ``tinyml-kit tinytl fit``, the notebook and ``benchmarks/tinytl_transfer.py``.
Training follows the official TinyTL recipe scaled down: Adam with a cosine schedule, batch 8,
optional label smoothing; only the epoch count and learning rates differ (see
``DEFAULT_LEARNING_RATES``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.tinytl.backbones import build_backbone, get_backbone
from tinyml_kit.tinytl.errors import TinyTLError
from tinyml_kit.tinytl.methods import get_method

# Adam learning rates per method: few trainable weights tolerate (and need) larger steps. Chosen on
# seed-0 runs of MobileNetV2 -> Fashion-MNIST (96 px, 100 images per class, 10 epochs): the lite
# residual methods gained 0.8 points from 1e-3 to 3e-3, biases nothing.
AUGMENTATIONS = ("none", "shift", "shift+flip")
"""Training-time augmentation of :func:`run_transfer`: ``shift`` = random translation by up to 1/8 of the
side and random zoom-in up to 15% (edges repeated), ``shift+flip`` adds random horizontal flips (not for
digits or text)."""

DEFAULT_LEARNING_RATES = {
    "last": 3e-3,
    "norm+last": 1e-3,
    "bias": 1e-3,
    "lite_residual": 3e-3,
    "lite_residual+bias": 3e-3,
    "full": 2e-4,
}


@dataclass
class TransferData:
    """Preprocessed train / test arrays of a transfer task."""

    name: str
    x_train: np.ndarray  # uint8 NHWC RGB
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_transfer_data(
    data: str = "fashion_mnist",
    image_size: int = 64,
    per_class: int = 100,
    test_per_class: int = 100,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> TransferData:
    """A small RGB transfer task.

    Args:
        data: ``"fashion_mnist"`` (or another built-in ``tinyml_kit.data`` dataset: grey images are
            resized and replicated to 3 channels) or the path of an image folder (one sub-folder per
            class; ``test_fraction`` of each class is held out).
        image_size: square side of the images given to the backbone.
        per_class: training images per class (stratified, reproducible from ``seed``).
        test_per_class: test images per class for built-in datasets.
    """
    from tinyml_kit import data as tk_data

    if data in tk_data.dataset_names():
        train = tk_data.load(data, "train").subset(per_class=per_class, seed=seed).resized(image_size, 3)
        test = tk_data.load(data, "test").subset(per_class=test_per_class, seed=seed).resized(image_size, 3)
        name = f"{data} ({per_class}/class, {image_size}px)"
    else:
        path = Path(data).expanduser()
        if not path.is_dir():
            raise TinyTLError(
                f"--data {data!r} is neither a built-in dataset ({', '.join(tk_data.dataset_names())}) "
                "nor an image folder"
            )
        folder = tk_data.ImageFolder(path, image_size, channels=3)
        train, test = folder.split_off(test_fraction, seed=seed)
        if per_class:
            counts = train.class_counts()
            train = train.subset(per_class=int(min(per_class, counts.min())), seed=seed)
        name = f"{path.name} ({len(train)} train images, {image_size}px)"
    return TransferData(name, train.x, train.y, test.x, test.y, train.class_names)


def augmented_batches(x: np.ndarray, y: np.ndarray, batch_size: int, augment: str, seed: int) -> Any:
    """Shuffled training batches (a ``tf.data.Dataset``), augmented per :data:`AUGMENTATIONS`."""
    import keras
    import tensorflow as tf

    layers = []
    if augment != "none":
        layers += [keras.layers.RandomTranslation(0.125, 0.125, fill_mode="nearest", seed=seed),
                   keras.layers.RandomZoom((-0.15, 0.0), fill_mode="nearest", seed=seed + 1)]  # fmt: skip
    if augment.endswith("+flip"):
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 2))
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if layers:
        pipeline = keras.Sequential(layers)
        dataset = dataset.map(lambda xb, yb: (pipeline(xb, training=True), yb), num_parallel_calls=1)
    return dataset.prefetch(2)


@dataclass
class TransferRun:
    """The outcome of one :func:`run_transfer`."""

    method: str
    seed: int
    accuracy: float
    modelled_bytes: float
    measured_peak_bytes: float | None
    measured_step_bytes: float | None
    seconds_per_step: float
    train_seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)
    model: Any = None

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("model", "history")}


def run_transfer(
    backbone: str,
    method: str,
    data: TransferData,
    *,
    epochs: int = 10,
    batch_size: int = 8,
    learning_rate: float | None = None,
    label_smoothing: float = 0.0,
    augment: str = "none",
    seed: int = 0,
    norm: str = "group",
    width_mult: float = 1.0,
    weights: str | None = "imagenet",
    memory_lean: bool = True,
    measure_every: int = 25,
    verbose: int = 0,
    keep_model: bool = False,
    prepare_options: dict[str, Any] | None = None,
) -> TransferRun:
    """Train ``backbone`` on ``data`` with a TinyTL ``method``; return accuracy, memory and timing.

    Seeds Python, NumPy and Keras with ``seed`` (initialisation of the new layers and the batch
    order); BatchNorm statistics of the backbone stay frozen (see ``prepare``).
    """
    import keras

    from tinyml_kit.tinytl.callbacks import StepTimer, TrainingMemoryMonitor
    from tinyml_kit.tinytl.transform import prepare

    spec = get_method(method)
    if augment not in AUGMENTATIONS:
        raise TinyTLError(f"augment={augment!r} is not one of {', '.join(AUGMENTATIONS)}")
    preprocess = get_backbone(backbone).preprocess
    image_size = int(data.x_train.shape[1])
    keras.utils.set_random_seed(seed)
    base = build_backbone(backbone, image_size, width_mult=width_mult, weights=weights)
    model = prepare(base, spec.name, data.num_classes, norm=norm, memory_lean=memory_lean,
                    classifier_activation=None, **(prepare_options or {}))  # fmt: skip
    del base
    x_train, x_test = preprocess(data.x_train), preprocess(data.x_test)
    y_train = keras.utils.to_categorical(data.y_train, data.num_classes)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    lr = learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATES[spec.name]
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, max(1, steps))),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing),
        metrics=["accuracy"],
        jit_compile=False,
    )
    monitor = TrainingMemoryMonitor(batch_size, every=measure_every)
    timer = StepTimer()
    start = time.perf_counter()
    train = augmented_batches(x_train, y_train, batch_size, augment, seed)
    history = model.fit(train, epochs=epochs, shuffle=False, callbacks=[monitor, timer], verbose=verbose)
    train_seconds = time.perf_counter() - start
    logits = model.predict(x_test, batch_size=64, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_test))
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    peaks, steps_mb = hist.get("memory_peak_mb"), hist.get("memory_step_mb")
    return TransferRun(
        method=spec.name,
        seed=seed,
        accuracy=accuracy,
        modelled_bytes=monitor.modelled["total"] if monitor.modelled else float("nan"),
        measured_peak_bytes=max(peaks) * 1e6 if peaks else None,
        measured_step_bytes=max(steps_mb) * 1e6 if steps_mb else None,
        seconds_per_step=timer.seconds_per_step,
        train_seconds=train_seconds,
        history=hist,
        model=model if keep_model else None,
    )
