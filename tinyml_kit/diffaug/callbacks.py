"""Callbacks for ``DataEfficientGAN``: adaptive augmentation (ADA), a D-overfitting probe, FID during
training, sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from tinyml_kit.diffaug.errors import DiffAugError
from tinyml_kit.diffaug.grid import save_image_grid


class AdaptiveAugment(keras.callbacks.Callback):
    """Adapts the augmentation probability ``p`` from the discriminator's overfitting signal (ADA).

    Every ``interval`` batches it reads ``r_t = E[sign(D(T(real)))]`` accumulated by the model's
    ``train_step`` since the last adjustment and moves ``p`` by ``sign(r_t - target) * speed * N / 1000``
    where ``N`` is the number of real images seen meanwhile, clipped to ``[0, 1]`` (Karras et al. 2020,
    who use ``target = 0.6`` and 500k images for ``p`` to go from 0 to 1, i.e. ``speed = 0.002``).
    ``r_t`` near 1 means D is confident on every real image (overfitting): ``p`` rises.

    Args:
        target: desired ``E[sign(D(real))]``, default 0.6.
        speed: largest change of ``p`` per 1000 real images; the default 0.02 (p from 0 to 1 in 50k
            images) suits short runs on small datasets.
        interval: batches between adjustments (ADA uses 4).
        augment: the ``DiffAugment`` layer to steer; defaults to ``model.augment``.

    Attributes:
        history: ``(batch_index, r_t, p)`` after every adjustment.
    """

    def __init__(
        self, target: float = 0.6, speed: float = 0.02, interval: int = 4, augment: Any = None
    ) -> None:
        super().__init__()
        if not -1.0 <= target <= 1.0:
            raise ValueError(f"Expected `target` in [-1, 1]. Received: target={target}")
        if speed <= 0:
            raise ValueError(f"Expected a strictly positive value. Received: speed={speed}")
        if int(interval) < 1:
            raise ValueError(f"Expected a strictly positive value. Received: interval={interval}")
        self.target, self.speed, self.interval = float(target), float(speed), int(interval)
        self.augment = augment
        self.history: list[tuple[int, float, float]] = []
        self._batches = 0

    def _layer(self) -> Any:
        layer = self.augment if self.augment is not None else getattr(self.model, "augment", None)
        if layer is None or not hasattr(layer, "p"):
            raise DiffAugError(
                "AdaptiveAugment needs a DiffAugment layer: train a DataEfficientGAN with "
                "augment=DiffAugment(p=0) "
                "or pass AdaptiveAugment(augment=layer)."
            )
        return layer

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._layer()
        if not hasattr(self.model, "pop_real_sign"):
            raise DiffAugError("AdaptiveAugment needs a model with pop_real_sign() (a DataEfficientGAN).")
        self.model.pop_real_sign()  # drop anything accumulated before this fit

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1
        if self._batches % self.interval:
            return
        total, count = self.model.pop_real_sign()
        if count <= 0:
            return
        layer = self._layer()
        r_t = total / count
        step = np.sign(r_t - self.target) * self.speed * count / 1000.0
        p = float(np.clip(layer.probability + step, 0.0, 1.0))
        layer.p.assign(p)
        self.history.append((self._batches, r_t, p))
        if logs is not None:
            logs["p"] = p

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["p"] = self._layer().probability


class OverfitProbe(keras.callbacks.Callback):
    """Records the discriminator's mean logit on training reals and on held-out reals every epoch.

    The gap ``d_train - d_heldout`` measures how much D has memorised its training set: it stays near 0
    while D generalises and grows when D overfits, the failure DiffAugment addresses (Zhao et al. 2020,
    Fig. 1). Images are scored as D sees them in training (through the model's augmentation, at its
    current ``p``) and, as ``raw``, without augmentation.

    Args:
        train_images: real training images in ``[-1, 1]`` (NHWC), e.g. 1000 of them.
        heldout_images: real images D never trains on (e.g. from the test split), same shape.
        batch_size: images per discriminator call.
        seed: seed of the probe's own augmentation draws (training's random stream is not touched).

    Attributes:
        history: one dict per epoch: ``step``, ``d_train``, ``d_heldout``, ``gap``, ``raw_gap``.
    """

    def __init__(self, train_images: Any, heldout_images: Any, batch_size: int = 500, seed: int = 0) -> None:
        super().__init__()
        self.train_images = np.asarray(train_images, dtype=np.float32)
        self.heldout_images = np.asarray(heldout_images, dtype=np.float32)
        if self.train_images.ndim != 4 or self.train_images.shape[1:] != self.heldout_images.shape[1:]:
            raise ValueError(
                "Expected NHWC train and held-out images of the same image shape. Received shapes "
                f"{self.train_images.shape} and {self.heldout_images.shape}"
            )
        self.batch_size = int(batch_size)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.history: list[dict[str, float]] = []
        self._steps = 0

    def _mean_logit(self, images: np.ndarray, augmented: bool) -> float:
        from tinyml_kit.diffaug.policies import diff_augment

        model, layer = self.model, getattr(self.model, "augment", None)
        total = 0.0
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            if augmented and layer is not None:
                batch = diff_augment(batch, layer.policy, self.seed_generator, p=layer.p)
            total += float(np.sum(keras.ops.convert_to_numpy(model.discriminator(batch, training=False))))
        return total / len(images)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        d_train = self._mean_logit(self.train_images, augmented=True)
        d_heldout = self._mean_logit(self.heldout_images, augmented=True)
        raw_gap = self._mean_logit(self.train_images, False) - self._mean_logit(self.heldout_images, False)
        self.history.append({
            "step": self._steps, "d_train": d_train, "d_heldout": d_heldout,
            "gap": d_train - d_heldout, "raw_gap": raw_gap,
        })  # fmt: skip
        if logs is not None:
            logs["d_gap"] = d_train - d_heldout


class FIDMonitor(keras.callbacks.Callback):
    """Scores the EMA generator with FID/KID every ``every_n_epochs`` epochs: the curve that shows when
    a baseline's discriminator starts to overfit and its FID turns up while DiffAugment's keeps falling.

    Args:
        extractor: a ``FeatureExtractor`` (``features.classifier_extractor`` works offline).
        reference: ``features.reference_features(extractor, ...)`` of the real images.
        every_n_epochs: period in epochs (>= 1).
        n_samples: generated images per evaluation (fewer than the final score's: it is a trend).
        seed: seed of the evaluation latents (fixed, so the curve compares like with like).
        verbose: 1 prints each evaluation (long runs without a progress bar).

    Attributes:
        history: one dict per evaluation: ``step`` (train batches so far), ``fid``, ``kid``.
    """

    def __init__(self, extractor: Any, reference: Any, every_n_epochs: int = 1, n_samples: int = 2000,
                 seed: int = 0, verbose: int = 0) -> None:
        super().__init__()
        if every_n_epochs < 1 or n_samples < 2:
            raise ValueError(
                "Expected every_n_epochs >= 1 and n_samples >= 2. Received: "
                f"every_n_epochs={every_n_epochs}, n_samples={n_samples}"
            )
        self.extractor, self.reference = extractor, reference
        self.every_n_epochs, self.n_samples, self.seed = int(every_n_epochs), int(n_samples), seed
        self.verbose = int(verbose)
        self.history: list[dict[str, float]] = []
        self._steps = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        from tinyml_kit.diffaug.features import score_images

        fake = self.model.sample(self.n_samples, seed=self.seed + 777)
        scores = score_images(self.extractor, self.reference, fake, kid_subset_size=min(1000, self.n_samples),
                              seed=self.seed)
        self.history.append({"step": self._steps, "fid": scores["fid"], "kid": scores["kid"]})
        if self.verbose:
            print(f"FIDMonitor: step {self._steps}: FID {scores['fid']:.2f}, KID {scores['kid']:.4g} "
                  f"({self.n_samples} samples)", flush=True)
        if logs is not None:
            logs["fid"] = scores["fid"]


class GANMonitor(keras.callbacks.Callback):
    """Saves a PNG grid of ``n`` samples from fixed latents every ``every_n_epochs`` epochs and at the end.

    Files are ``<out_dir>/samples_epoch_0001.png`` ... and ``<out_dir>/samples_final.png``; samples come
    from the model's EMA generator (``model(z)``).

    Args:
        out_dir: folder for the PNGs (created on demand).
        every_n_epochs: period in epochs; 0 saves only the final grid.
        n: number of samples (a square number gives a square grid).
        seed: seed of the fixed latent vectors.
    """

    def __init__(self, out_dir: str | Path, every_n_epochs: int = 1, n: int = 64, seed: int = 0) -> None:
        super().__init__()
        if n < 1 or every_n_epochs < 0:
            raise ValueError(
                f"Expected n >= 1 and every_n_epochs >= 0. Received: n={n}, every_n_epochs={every_n_epochs}"
            )
        self.out_dir, self.every_n_epochs, self.n, self.seed = (
            Path(out_dir),
            int(every_n_epochs),
            int(n),
            seed,
        )
        self.saved: list[Path] = []

    def _save(self, name: str) -> None:
        images = self.model.sample(self.n, seed=self.seed)
        self.saved.append(save_image_grid(images, self.out_dir / f"samples_{name}.png"))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            self._save(f"epoch_{epoch + 1:04d}")

    def on_train_end(self, logs: dict | None = None) -> None:
        self._save("final")
