"""``DataEfficientGAN``: a GAN ``keras.Model`` whose discriminator sees DiffAugment-ed real and fake images.

Follows the keras.io GAN examples (custom ``train_step``, ``compile(d_optimizer, g_optimizer)``) on the
TensorFlow backend. One ``train_step`` = one discriminator update on ``T(real)`` and ``T(G(z))`` plus one
generator update through ``D(T(G(z)))``, where ``T`` is the augmentation and gradients pass through it.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from tinyml_kit.diffaug.errors import DiffAugError
from tinyml_kit.diffaug.layer import DiffAugment

LOSSES = ("hinge", "ns")


def _require_tensorflow_backend() -> None:
    if keras.backend.backend() != "tensorflow":
        raise DiffAugError(
            f"DataEfficientGAN's train_step uses tf.GradientTape and needs the TensorFlow backend; "
            f"Keras is using {keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before importing "
            "keras."
        )


def _as_augment(augment: Any) -> DiffAugment | None:
    if augment is None or isinstance(augment, keras.layers.Layer):
        return augment
    if isinstance(augment, str):
        return None if augment.strip().lower() in ("", "none") else DiffAugment(augment)
    raise DiffAugError(
        "Expected `augment` to be a DiffAugment layer, a policy string or None. "
        f"Received: augment={augment!r}"
    )


def discriminator_loss(kind: str, real_logits: Any, fake_logits: Any) -> Any:
    """Hinge: ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``; ns: ``E[softplus(-D(x)) + softplus(D(G(z)))]``."""
    if kind == "hinge":
        return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(kind: str, fake_logits: Any) -> Any:
    """Hinge: ``-E[D(G(z))]``; ns (non-saturating): ``E[softplus(-D(G(z)))]``."""
    if kind == "hinge":
        return -ops.mean(fake_logits)
    return ops.mean(ops.softplus(-fake_logits))


@keras.saving.register_keras_serializable(package="tinyml_kit")
class DataEfficientGAN(keras.Model):
    """GAN trained with Differentiable Augmentation (Zhao et al., NeurIPS 2020).

    Args:
        generator: model ``z (B, latent_dim) -> images (B, H, W, C)`` in ``[-1, 1]``.
        discriminator: model ``images -> logits (B, 1)``.
        augment: a ``DiffAugment`` layer, a policy string, or ``None`` for no augmentation.
        loss: ``"hinge"`` (BigGAN) or ``"ns"`` (non-saturating logistic, StyleGAN2).
        r1_gamma: weight of the R1 penalty ``gamma / 2 * E||grad_x D(T(x))||^2`` on reals (gradient taken
            w.r.t. the un-augmented reals, as in the official StyleGAN2 + DiffAugment loss); 0 disables it.
        ema: decay of the exponential moving average of the generator's weights used by ``call``,
            ``sample`` and evaluation. The decay used at step t is ``min(ema, (1 + t) / (10 + t))`` so
            short runs are not dominated by the initial weights. ``None`` or 0 disables the copy.
        latent_dim: size of ``z``; inferred from the generator's input when omitted.
        seed: seed of the latent sampler.

    Call arguments:
        z: latent vectors; returns images of the EMA generator.

    Example:
    >>> gan = DataEfficientGAN(dcgan_generator(), dcgan_discriminator())  # doctest: +SKIP
    >>> gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))  # doctest: +SKIP
    >>> gan.fit(dataset_of_images_in_minus1_1, epochs=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        augment: DiffAugment | str | None = "color,translation,cutout",
        loss: str = "hinge",
        r1_gamma: float = 0.0,
        ema: float | None = 0.999,
        latent_dim: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        _require_tensorflow_backend()
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise DiffAugError(f"Unknown GAN loss {loss!r}. Valid choices: {', '.join(LOSSES)}.")
        if r1_gamma < 0:
            raise DiffAugError(f"Expected r1_gamma >= 0. Received: r1_gamma={r1_gamma}")
        if ema is not None and not 0.0 <= ema < 1.0:
            raise DiffAugError(f"Expected ema in [0, 1) or None. Received: ema={ema}")
        self.generator = generator
        self.discriminator = discriminator
        self.augment = _as_augment(augment)
        self.loss_kind = loss
        self.r1_gamma = float(r1_gamma)
        self.ema = float(ema) if ema else 0.0
        self.latent_dim = int(latent_dim or generator.input_shape[-1])
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.ema_generator = self._make_ema_copy(generator) if self.ema else generator
        # Sum and count of sign(D(T(real))) since the last read: AdaptiveAugment's overfitting signal.
        self.real_sign_sum = keras.Variable(0.0, trainable=False, name="real_sign_sum")
        self.real_sign_count = keras.Variable(0.0, trainable=False, name="real_sign_count")
        self.ema_updates = keras.Variable(0.0, trainable=False, name="ema_updates")
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "d_real", "d_fake", "r1")
        }

    @staticmethod
    def _make_ema_copy(generator: keras.Model) -> keras.Model:
        if not generator.built:
            raise DiffAugError("Build the generator (call it once or give it an Input) before wrapping it.")
        try:
            copy = keras.models.clone_model(generator)
        except Exception as exc:  # subclassed models without get_config cannot be cloned
            raise DiffAugError(
                f"Cannot copy generator {generator.name!r} for the EMA ({exc}); use a functional/Sequential "
                "generator or pass ema=None."
            ) from exc
        if [v.shape for v in copy.variables] != [v.shape for v in generator.variables]:
            raise DiffAugError(
                f"The EMA copy of {generator.name!r} does not match its variables; pass ema=None."
            )
        copy.set_weights(generator.get_weights())
        copy.trainable = False
        return copy

    def compile(
        self,
        d_optimizer: keras.optimizers.Optimizer,
        g_optimizer: keras.optimizers.Optimizer,
        **kwargs: Any,
    ) -> None:
        """Sets the two optimizers (wrapped in ``LossScaleOptimizer`` under a float16 policy)."""
        super().compile(**kwargs)
        if keras.mixed_precision.global_policy().compute_dtype == "float16":
            wrap = keras.optimizers.LossScaleOptimizer
            d_optimizer = d_optimizer if isinstance(d_optimizer, wrap) else wrap(d_optimizer)
            g_optimizer = g_optimizer if isinstance(g_optimizer, wrap) else wrap(g_optimizer)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def call(self, z: Any, training: bool = False) -> Any:
        return self.ema_generator(z, training=training)

    def _augmented(self, images: Any) -> Any:
        return images if self.augment is None else self.augment(images, training=True)

    def _discriminate(self, images: Any) -> Any:
        return ops.cast(self.discriminator(self._augmented(images), training=True), "float32")

    def train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        real = data[0] if isinstance(data, tuple | list) else data
        real = tf.cast(real, "float32")
        batch = tf.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        fake = self.generator(z, training=True)
        with tf.GradientTape() as d_tape:
            if self.r1_gamma > 0:
                with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
                    r1_tape.watch(real)
                    real_logits = self._discriminate(real)
                real_grads = r1_tape.gradient(real_logits, real)  # d(sum of logits)/d(real)
                r1 = tf.reduce_mean(tf.reduce_sum(tf.square(tf.cast(real_grads, "float32")), axis=[1, 2, 3]))
            else:
                real_logits, r1 = self._discriminate(real), tf.constant(0.0)
            fake_logits = self._discriminate(tf.stop_gradient(fake))
            d_loss = discriminator_loss(self.loss_kind, real_logits, fake_logits)
            d_total = d_loss + 0.5 * self.r1_gamma * r1
            d_scaled = self.d_optimizer.scale_loss(d_total)
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars, strict=True))

        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as g_tape:
            g_logits = self._discriminate(self.generator(z, training=True))
            g_loss = generator_loss(self.loss_kind, g_logits)
            g_scaled = self.g_optimizer.scale_loss(g_loss)
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars, strict=True))
        self._update_ema()

        real_sign = tf.sign(real_logits)
        self.real_sign_sum.assign_add(tf.reduce_sum(real_sign))
        self.real_sign_count.assign_add(tf.cast(tf.size(real_sign), "float32"))
        for name, value in (
            ("d_loss", d_loss),
            ("g_loss", g_loss),
            ("d_real", tf.reduce_mean(real_sign)),
            ("d_fake", tf.reduce_mean(tf.sign(fake_logits))),
            ("r1", r1),
        ):
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        logs["p"] = self.augment.p.value if self.augment is not None else tf.constant(0.0)
        return logs

    def _update_ema(self) -> None:
        if self.ema_generator is self.generator:
            return
        decay = ops.minimum(self.ema, (1.0 + self.ema_updates) / (10.0 + self.ema_updates))
        for averaged, current in zip(self.ema_generator.variables, self.generator.variables, strict=True):
            if current.trainable:
                mixed = decay * ops.cast(averaged, "float32") + (1.0 - decay) * ops.cast(current, "float32")
                averaged.assign(ops.cast(mixed, averaged.dtype))
            else:  # e.g. BatchNorm statistics: copy
                averaged.assign(current)
        self.ema_updates.assign_add(1.0)

    def pop_real_sign(self) -> tuple[float, float]:
        """Returns and resets ``(sum, count)`` of ``sign(D(T(real)))`` accumulated by ``train_step``."""
        total, count = (
            float(ops.convert_to_numpy(self.real_sign_sum)),
            float(ops.convert_to_numpy(self.real_sign_count)),
        )
        self.real_sign_sum.assign(0.0)
        self.real_sign_count.assign(0.0)
        return total, count

    def sample(self, n: int, seed: int | None = 0, batch_size: int = 256, use_ema: bool = True) -> np.ndarray:
        """``n`` images in ``[-1, 1]`` as float32 NHWC numpy, from the EMA generator by default."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim)).astype("float32")
        model = self.ema_generator if use_ema else self.generator
        chunks = [
            ops.convert_to_numpy(model(z[i : i + batch_size], training=False))
            for i in range(0, n, batch_size)
        ]
        return np.clip(np.concatenate(chunks).astype("float32"), -1.0, 1.0)

    def get_config(self) -> dict:
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "generator": serialize(self.generator),
            "discriminator": serialize(self.discriminator),
            "augment": serialize(self.augment) if self.augment is not None else None,
            "loss": self.loss_kind,
            "r1_gamma": self.r1_gamma,
            "ema": self.ema or None,
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> DataEfficientGAN:
        config = dict(config)
        for key in ("generator", "discriminator", "augment"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)
