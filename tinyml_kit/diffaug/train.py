"""One configurable training run of a data-efficient GAN, shared by the CLI, the benchmark and the notebook.

``train_gan(config, images)`` builds the reference architecture, the augmentation for the chosen mode
(``none``, ``diffaug`` = DiffAugment with ``p = 1``, ``adaptive`` = DiffAugment with ADA-controlled
``p`` starting at 0), trains for ``config.steps`` steps and returns the model with timings.
``evaluate_gan`` scores its EMA generator with FID/KID against a reference feature set.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.diffaug.errors import DiffAugError

AUGMENT_MODES = ("none", "diffaug", "adaptive")
ARCHITECTURES = ("dcgan", "resnet")


@dataclass
class TrainConfig:
    """Everything that defines a run; two runs with equal configs and data give the same model."""

    augment: str = "diffaug"
    policy: str = "color,translation,cutout"
    arch: str = "dcgan"
    steps: int = 2000
    batch_size: int = 64
    latent_dim: int = 128
    width: int | None = None
    loss: str = "hinge"
    r1_gamma: float = 0.0
    ema: float | None = 0.999
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta_1: float = 0.5
    seed: int = 0
    log_every: int = 200
    ada_target: float = 0.6
    ada_speed: float = 0.02
    ada_interval: int = 4

    def __post_init__(self) -> None:
        if self.augment not in AUGMENT_MODES:
            raise DiffAugError(
                f"Unknown augment mode {self.augment!r}. Valid choices: {', '.join(AUGMENT_MODES)}."
            )
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1:
            raise DiffAugError(
                f"Expected steps, batch_size and log_every >= 1. Received: steps={self.steps}, "
                f"batch_size={self.batch_size}, log_every={self.log_every}"
            )


@dataclass
class TrainResult:
    """A trained GAN and what was measured while training it."""

    gan: Any
    config: TrainConfig
    steps: int
    seconds: float
    step_seconds: float  # median wall time of one train_step after the first (tracing) epoch
    history: dict[str, list[float]]
    p_history: list[tuple[int, float, float]] = field(default_factory=list)
    samples: list[Path] = field(default_factory=list)
    overfit_history: list[dict[str, float]] = field(default_factory=list)  # OverfitProbe rows, if any

    def summary(self) -> dict[str, Any]:
        last = {k: float(v[-1]) for k, v in self.history.items() if v}
        return {
            "config": asdict(self.config),
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "step_ms": round(1000 * self.step_seconds, 2),
            "final_logs": last,
        }


def _step_timer() -> Any:
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Wall time of each batch after the first epoch (which includes tracing)."""

        def __init__(self) -> None:
            super().__init__()
            self.durations: list[float] = []
            self._epoch = 0
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self._epoch > 0 or batch > 1:
                self.durations.append(time.perf_counter() - self._start)

    return StepTimer()


def make_dataset(images: np.ndarray, batch_size: int, seed: int) -> Any:
    """Infinite shuffled ``tf.data`` of float32 batches in ``[-1, 1]`` from uint8 NHWC images."""
    import tensorflow as tf

    if len(images) < batch_size:
        raise DiffAugError(
            f"Only {len(images)} training images for batch_size={batch_size}; use a larger --fraction or a "
            "smaller --batch-size."
        )
    ds = tf.data.Dataset.from_tensor_slices(images)
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda x: tf.cast(x, tf.float32) / 127.5 - 1.0, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_gan(config: TrainConfig, image_shape: tuple[int, int, int]) -> tuple[Any, list[Any]]:
    """``(DataEfficientGAN, extra callbacks)`` for a config: models, augmentation, optimizers."""
    import keras

    from tinyml_kit.diffaug.callbacks import AdaptiveAugment
    from tinyml_kit.diffaug.gan import DataEfficientGAN
    from tinyml_kit.diffaug.layer import DiffAugment
    from tinyml_kit.diffaug.models import build_pair

    keras.utils.set_random_seed(config.seed)
    generator, discriminator = build_pair(config.arch, image_shape, config.latent_dim, config.width)
    augment, callbacks = None, []
    if config.augment == "diffaug":
        augment = DiffAugment(config.policy, p=1.0, seed=config.seed)
    elif config.augment == "adaptive":
        augment = DiffAugment(config.policy, p=0.0, seed=config.seed)
        callbacks.append(AdaptiveAugment(config.ada_target, config.ada_speed, config.ada_interval))
    gan = DataEfficientGAN(
        generator, discriminator, augment=augment, loss=config.loss, r1_gamma=config.r1_gamma,
        ema=config.ema, latent_dim=config.latent_dim, seed=config.seed,
    )  # fmt: skip
    gan.compile(
        d_optimizer=keras.optimizers.Adam(config.d_lr, beta_1=config.beta_1, beta_2=0.999),
        g_optimizer=keras.optimizers.Adam(config.g_lr, beta_1=config.beta_1, beta_2=0.999),
    )
    return gan, callbacks


def train_gan(
    config: TrainConfig,
    images: np.ndarray,
    *,
    out_dir: str | Path | None = None,
    grid_every: int = 1,
    verbose: int = 1,
    heldout: np.ndarray | None = None,
    probe_size: int = 1000,
    extra_callbacks: list[Any] | None = None,
) -> TrainResult:
    """Trains a GAN on uint8 NHWC ``images`` for about ``config.steps`` steps.

    Steps are grouped into Keras epochs of about ``config.log_every`` steps (the total is rounded up to
    a whole number of epochs). With ``out_dir``, a sample grid is saved every ``grid_every`` epochs and
    at the end. With ``heldout`` (uint8 real images not in ``images``), an ``OverfitProbe`` compares D's
    output on ``probe_size`` training and held-out images after every epoch. ``extra_callbacks``
    (e.g. a ``FIDMonitor``) run after the built-in ones.
    """
    from tinyml_kit.diffaug.callbacks import AdaptiveAugment, GANMonitor, OverfitProbe
    from tinyml_kit.diffaug.features import to_gan_range

    epochs = math.ceil(config.steps / config.log_every)
    steps_per_epoch = math.ceil(config.steps / epochs)
    gan, callbacks = build_gan(config, tuple(int(d) for d in images.shape[1:]))
    timer = _step_timer()
    callbacks.append(timer)
    monitor = None
    if out_dir is not None:
        monitor = GANMonitor(out_dir, every_n_epochs=grid_every, n=64, seed=config.seed)
        callbacks.append(monitor)
    probe = None
    if heldout is not None:
        probe = OverfitProbe(to_gan_range(images[:probe_size]), to_gan_range(heldout[:probe_size]))
        callbacks.insert(0, probe)  # before AdaptiveAugment/GANMonitor so it sees the epoch's final state
    callbacks.extend(extra_callbacks or [])
    start = time.perf_counter()
    history = gan.fit(
        make_dataset(images, config.batch_size, config.seed),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    ada = next((cb for cb in callbacks if isinstance(cb, AdaptiveAugment)), None)
    return TrainResult(
        gan=gan,
        config=config,
        steps=epochs * steps_per_epoch,
        seconds=seconds,
        step_seconds=float(np.median(timer.durations)) if timer.durations else float("nan"),
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        p_history=list(ada.history) if ada is not None else [],
        samples=list(monitor.saved) if monitor is not None else [],
        overfit_history=list(probe.history) if probe is not None else [],
    )


def evaluate_gan(
    gan: Any,
    extractor: Any,
    reference: Any,
    n_samples: int = 10_000,
    seed: int = 0,
    kid_subset_size: int = 1000,
) -> dict[str, float]:
    """FID/KID of ``n_samples`` EMA-generator images against ``reference`` (see ``features.py``)."""
    from tinyml_kit.diffaug.features import score_images

    fake = gan.sample(n_samples, seed=seed + 12345)
    return score_images(extractor, reference, fake, kid_subset_size=kid_subset_size, seed=seed)


def augmentation_overhead(
    policy: str, image_shape: tuple[int, int, int], batch_size: int, repeats: int = 50
) -> float:
    """Median seconds for DiffAugment (``p = 1``) forward + backward on one batch, traced once."""
    import keras
    import tensorflow as tf

    from tinyml_kit.diffaug.layer import DiffAugment

    layer = DiffAugment(policy, seed=0)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch_size, *image_shape)).astype("float32"))

    @tf.function
    def step(images: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(images)
            total = tf.reduce_sum(layer(images, training=True))
        return tape.gradient(total, images)

    step(x)
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(step(x))
        durations.append(time.perf_counter() - start)
    return float(np.median(durations))
