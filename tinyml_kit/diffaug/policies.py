"""Differentiable augmentations of DiffAugment (Zhao et al., NeurIPS 2020) written with ``keras.ops``.

Each transform maps a batch of NHWC images (GAN range ``[-1, 1]``) to a batch of the same shape and
dtype, draws its randomness per sample from a ``keras.random.SeedGenerator`` and is differentiable with
respect to the images. Semantics follow the paper's official ``DiffAugment_tf.py``:

* ``brightness``: ``x + (u - 0.5)``
* ``saturation``: ``(x - mean_c) * 2u + mean_c`` (mean over channels; identity on 1-channel images)
* ``contrast``: ``(x - mean) * (u + 0.5) + mean`` (mean over H, W, C of each image)
* ``translation``: integer shift in ``[-s_H, s_H]`` rows and ``[-s_W, s_W]`` columns with
  ``s = int(size / 8 + 0.5)`` (1/8 of the size rounded half up, 4 for 28 or 32 pixels), vacated pixels
  set to 0
* ``cutout``: a ``c_H x c_W`` square zeroed, ``c = int(size / 2 + 0.5)``, centre uniform over
  ``[0, H + 1 - c_H % 2)`` (same for W), clipped at the image borders

with ``u ~ U[0, 1)`` drawn per sample. Policies group transforms: ``color`` = brightness, saturation,
contrast (in that order); ``translation``; ``cutout``. ``register_policy`` adds your own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from tinyml_kit.diffaug.errors import PolicyError

Transform = Callable[[Any, Any], Any]
"""``fn(images, seed_generator) -> images``; ``seed_generator`` may be ``None`` (global seed)."""

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2

_POLICIES: dict[str, tuple[Transform, ...]] = {}
_BUILTIN = ("color", "translation", "cutout", "brightness", "saturation", "contrast")


def _per_sample_uniform(x: Any, seed: Any) -> Any:
    """``u ~ U[0, 1)`` of shape ``(B, 1, 1, 1)`` in the images' dtype."""
    u = keras.random.uniform((ops.shape(x)[0], 1, 1, 1), dtype="float32", seed=seed)
    return ops.cast(u, x.dtype)


def _mean(x: Any, axis: Sequence[int]) -> Any:
    """Mean accumulated in float32 (safe for float16 inputs), returned in the input dtype."""
    return ops.cast(ops.mean(ops.cast(x, "float32"), axis=axis, keepdims=True), x.dtype)


def scaled_size(size: int, ratio: float) -> int:
    """``int(size * ratio + 0.5)``: the official code's rounding of the translation and cutout sizes."""
    return int(size * ratio + 0.5)


def _static_hw(x: Any, name: str) -> tuple[int, int]:
    height, width = x.shape[1], x.shape[2]
    if len(x.shape) != 4 or height is None or width is None:
        raise PolicyError(
            f"`{name}` needs NHWC images with a static height and width. Received shape {tuple(x.shape)}; "
            "give the model's Input an explicit image size."
        )
    return int(height), int(width)


def rand_brightness(x: Any, seed: Any = None) -> Any:
    """Adds ``u - 0.5`` to every pixel of a sample (one ``u ~ U[0, 1)`` per sample)."""
    return x + (_per_sample_uniform(x, seed) - ops.cast(0.5, x.dtype))


def rand_saturation(x: Any, seed: Any = None) -> Any:
    """Scales each pixel's deviation from its channel mean by ``2u``."""
    mean_c = _mean(x, axis=[3])
    return (x - mean_c) * (_per_sample_uniform(x, seed) * ops.cast(2.0, x.dtype)) + mean_c


def rand_contrast(x: Any, seed: Any = None) -> Any:
    """Scales each sample's deviation from its mean (over H, W, C) by ``u + 0.5``."""
    mean = _mean(x, axis=[1, 2, 3])
    return (x - mean) * (_per_sample_uniform(x, seed) + ops.cast(0.5, x.dtype)) + mean


def _shift_axis(x: Any, shift: Any, axis: int, size: int) -> Any:
    """``out[..., i, ...] = x[..., i + shift, ...]`` along ``axis`` (1 or 2), zero where out of range.

    One zero pixel is padded on each side and source indices are clipped into the padded range, so
    any index outside the image reads a zero (the official code's gather-from-padded formulation).
    """
    pad = [[0, 0], [0, 0], [0, 0], [0, 0]]
    pad[axis] = [1, 1]
    padded = ops.pad(x, pad)
    source = ops.clip(ops.arange(size, dtype="int32")[None, :] + shift + 1, 0, size + 1)  # (B, size)
    index_shape = (-1, size, 1, 1) if axis == 1 else (-1, 1, size, 1)
    return ops.take_along_axis(padded, ops.reshape(source, index_shape), axis=axis)


def rand_translation(x: Any, seed: Any = None) -> Any:
    """Shifts each sample by integers up to 1/8 of the size per axis (rounded), filling with zeros."""
    height, width = _static_hw(x, "translation")
    batch = ops.shape(x)[0]
    max_dx, max_dy = scaled_size(width, TRANSLATION_RATIO), scaled_size(height, TRANSLATION_RATIO)
    dx = keras.random.randint((batch, 1), -max_dx, max_dx + 1, dtype="int32", seed=seed)
    dy = keras.random.randint((batch, 1), -max_dy, max_dy + 1, dtype="int32", seed=seed)
    x = _shift_axis(x, dx, axis=2, size=width)
    return _shift_axis(x, dy, axis=1, size=height)


def cutout_mask(batch: Any, height: int, width: int, seed: Any = None, dtype: str = "float32") -> Any:
    """``(B, H, W, 1)`` mask: 0 inside each sample's random half-size square (see ``scaled_size``), else 1."""
    cut_h, cut_w = scaled_size(height, CUTOUT_RATIO), scaled_size(width, CUTOUT_RATIO)
    centre_y = keras.random.randint((batch, 1), 0, height + 1 - cut_h % 2, dtype="int32", seed=seed)
    centre_x = keras.random.randint((batch, 1), 0, width + 1 - cut_w % 2, dtype="int32", seed=seed)
    top, left = centre_y - cut_h // 2, centre_x - cut_w // 2
    rows = ops.arange(height, dtype="int32")[None, :]
    cols = ops.arange(width, dtype="int32")[None, :]
    in_rows = ops.logical_and(rows >= top, rows < top + cut_h)  # (B, H)
    in_cols = ops.logical_and(cols >= left, cols < left + cut_w)  # (B, W)
    inside = ops.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return ops.cast(ops.logical_not(inside), dtype)[..., None]


def rand_cutout(x: Any, seed: Any = None) -> Any:
    """Zeroes a random square of half the image size per sample (clipped where it crosses a border)."""
    height, width = _static_hw(x, "cutout")
    return x * cutout_mask(ops.shape(x)[0], height, width, seed=seed, dtype=x.dtype)


def register_policy(name: str, fns: Sequence[Transform] | Transform, *, overwrite: bool = False) -> None:
    """Registers ``name`` as a policy applying ``fns`` in order; each is ``fn(images, seed_generator)``.

    Register before building or loading a ``DiffAugment`` that names the policy: configs store names only.

    Example:
    >>> register_policy("flip", [lambda x, seed: x[:, :, ::-1, :]])  # doctest: +SKIP
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise PolicyError(
            f"Expected a policy name that is a Python identifier (no commas). Received: {name!r}"
        )
    if name in _BUILTIN:
        raise PolicyError(f"Policy {name!r} is built in and cannot be replaced; choose another name.")
    if name in _POLICIES and not overwrite:
        raise PolicyError(f"Policy {name!r} is already registered; pass overwrite=True to replace it.")
    fns = (fns,) if callable(fns) else tuple(fns)
    if not fns or not all(callable(fn) for fn in fns):
        raise PolicyError(
            f"Expected one or more callables fn(images, seed_generator) for {name!r}. Received: {fns!r}"
        )
    _POLICIES[name] = fns


def unregister_policy(name: str) -> None:
    """Removes a policy added with ``register_policy`` (built-in policies stay)."""
    if name in _BUILTIN:
        raise PolicyError(f"Policy {name!r} is built in and cannot be removed.")
    _POLICIES.pop(name, None)


def available_policies() -> list[str]:
    """Names usable in a policy string, built-in first."""
    return list(_POLICIES)


def parse_policy(policy: str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalises ``"color, translation"``, ``["color"]``, ``None`` or ``"none"`` to known names."""
    if policy is None:
        return ()
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [n.strip() for n in names if n.strip() and n.strip().lower() != "none"]
    unknown = [n for n in names if n not in _POLICIES]
    if unknown:
        raise PolicyError(
            f"Unknown DiffAugment policy {', '.join(map(repr, unknown))}. Valid names: "
            f"{', '.join(available_policies())} (comma-separated), or register one with register_policy()."
        )
    return tuple(names)


def policy_transforms(policy: str | Sequence[str] | None) -> list[Transform]:
    """The transforms a policy applies, in order."""
    return [fn for name in parse_policy(policy) for fn in _POLICIES[name]]


def diff_augment(
    x: Any,
    policy: str | Sequence[str] | None = "color,translation,cutout",
    seed_generator: keras.random.SeedGenerator | None = None,
    p: Any = 1.0,
) -> Any:
    """Applies a DiffAugment policy to NHWC images, differentiably and independently per sample.

    Args:
        x: images ``(B, H, W, C)``, float (GAN range ``[-1, 1]``).
        policy: comma-separated policy names (see ``available_policies()``), a list of them, or
            ``None``/``""``/``"none"`` for the identity.
        seed_generator: a ``keras.random.SeedGenerator`` (needed for reproducible draws); ``None``
            uses Keras' global generator.
        p: probability (float or scalar variable) with which each transform is applied to each sample;
            ``1.0`` applies every transform to every sample (the paper's setting), ``0.0`` is the identity.

    Returns:
        Augmented images with the shape and dtype of ``x``.
    """
    transforms = policy_transforms(policy)
    if not transforms:
        return x
    x = ops.convert_to_tensor(x)
    always = isinstance(p, int | float) and p >= 1.0
    if isinstance(p, int | float) and p <= 0.0:
        return x
    for fn in transforms:
        augmented = fn(x, seed_generator)
        if always:
            x = augmented
        else:
            draw = keras.random.uniform((ops.shape(x)[0], 1, 1, 1), dtype="float32", seed=seed_generator)
            x = ops.where(draw < ops.cast(p, "float32"), augmented, x)
    return x


_POLICIES.update(
    {
        "color": (rand_brightness, rand_saturation, rand_contrast),
        "translation": (rand_translation,),
        "cutout": (rand_cutout,),
        "brightness": (rand_brightness,),
        "saturation": (rand_saturation,),
        "contrast": (rand_contrast,),
    }
)
