"""The ``DiffAugment`` Keras layer: differentiable augmentation with a per-sample probability ``p``."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tinyml_kit.diffaug.policies import diff_augment, parse_policy


@keras.saving.register_keras_serializable(package="tinyml_kit")
class DiffAugment(keras.layers.Layer):
    """Differentiable Augmentation (Zhao et al., NeurIPS 2020) for GAN discriminators.

    Augments NHWC images in ``[-1, 1]`` with the transforms of ``policy`` (``color``, ``translation``,
    ``cutout`` or names added with ``register_policy``). Each transform is applied to each sample
    independently with probability ``p`` (``p = 1`` reproduces the paper). ``p`` is a non-trainable
    scalar variable: ``layer.p.assign(0.3)`` takes effect in an already traced ``train_step``, which is
    how ``AdaptiveAugment`` steers it. Gradients flow to the input through every transform.

    Args:
        policy: comma-separated policy names, default ``"color,translation,cutout"``.
        p: initial probability in ``[0, 1]``.
        always: augment even when ``training`` is false (e.g. to visualise the policy).
        seed: integer seed of the layer's ``SeedGenerator`` for reproducible draws.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: float images ``(B, H, W, C)``; ``H`` and ``W`` must be static for translation/cutout.
        training: augment only when true (unless ``always``); Keras sets it inside ``fit``.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input.

    Example:
    >>> layer = DiffAugment("translation,cutout", seed=0)
    >>> layer(np.zeros((2, 32, 32, 3)), training=True).shape  # doctest: +SKIP
    TensorShape([2, 32, 32, 3])
    """

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        p: float = 1.0,
        always: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy = ",".join(parse_policy(policy))
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Expected `p` to be a probability in [0, 1]. Received: p={p!r}")
        self.always = bool(always)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.p = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(p)),
            trainable=False,
            dtype="float32",
            name="p",
        )
        self.built = True

    @property
    def probability(self) -> float:
        """The current value of ``p`` as a Python float."""
        return float(ops.convert_to_numpy(self.p))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not (training or self.always) or not self.policy:
            return inputs
        return diff_augment(inputs, self.policy, self.seed_generator, p=self.p)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "policy": self.policy,
            "p": self.probability,
            "always": self.always,
            "seed": self.seed,
        }
