"""DiffAugment transforms: statistics match the paper's definitions, gradients flow, seeds reproduce."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tinyml_kit.diffaug import policies
from tinyml_kit.diffaug.errors import PolicyError
from tinyml_kit.errors import TinymlKitError

TRANSFORMS = {
    "brightness": policies.rand_brightness,
    "saturation": policies.rand_saturation,
    "contrast": policies.rand_contrast,
    "translation": policies.rand_translation,
    "cutout": policies.rand_cutout,
}


def images(n: int, h: int = 28, w: int = 28, c: int = 1, low: float = 0.1, seed: int = 0) -> np.ndarray:
    """Strictly positive random images, so zero-filled pixels are recognisable."""
    return np.random.default_rng(seed).uniform(low, 1.0, (n, h, w, c)).astype("float32")


def apply(fn, x: np.ndarray, seed: int = 0) -> np.ndarray:
    return keras.ops.convert_to_numpy(fn(tf.constant(x), keras.random.SeedGenerator(seed)))


def test_brightness_adds_one_uniform_shift_per_sample():
    x = images(4000, 8, 8, 3)
    shift = apply(policies.rand_brightness, x) - x
    per_sample = shift[:, 0, 0, 0]
    np.testing.assert_allclose(shift, per_sample[:, None, None, None] * np.ones_like(x), atol=1e-6)
    assert per_sample.min() >= -0.5 and per_sample.max() < 0.5
    assert abs(per_sample.mean()) < 0.03 and abs(per_sample.std() - np.sqrt(1 / 12)) < 0.02
    assert per_sample.min() < -0.45 and per_sample.max() > 0.45  # the whole range is used


def per_sample_factor(dev_in: np.ndarray, dev_out: np.ndarray) -> np.ndarray:
    """Least-squares k per sample with dev_out = k * dev_in; asserts the fit is exact."""
    a, b = dev_in.reshape(len(dev_in), -1), dev_out.reshape(len(dev_out), -1)
    k = (a * b).sum(axis=1) / (a * a).sum(axis=1)
    np.testing.assert_allclose(b, k[:, None] * a, atol=2e-5)
    return k


def test_saturation_scales_deviation_from_channel_mean_by_2u():
    x = images(2000, 6, 6, 3)
    y = apply(policies.rand_saturation, x)
    mean_c = x.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(y.mean(axis=3, keepdims=True), mean_c, atol=1e-5)
    k = per_sample_factor(x - mean_c, y - mean_c)
    assert k.min() >= 0.0 and k.max() < 2.0 and abs(k.mean() - 1.0) < 0.05 and k.max() > 1.9


def test_saturation_is_identity_on_grey_images():
    x = images(16)
    np.testing.assert_allclose(apply(policies.rand_saturation, x), x, atol=1e-6)


def test_contrast_keeps_mean_and_scales_by_u_plus_half():
    x = images(2000, 6, 6, 3)
    y = apply(policies.rand_contrast, x)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3), keepdims=True), mean, atol=1e-5)
    k = per_sample_factor(x - mean, y - mean)
    assert k.min() >= 0.5 and k.max() < 1.5 and abs(k.mean() - 1.0) < 0.05


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[i, j] = x[i + dy, j + dx], zero outside (the official code's convention)."""
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    source = x[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
    top, left = max(-dy, 0), max(-dx, 0)
    out[top : top + source.shape[0], left : left + source.shape[1]] = source
    return out


# Largest shifts as the official code rounds them: int(size / 8 + 0.5).
@pytest.mark.parametrize(("h", "w", "max_dy", "max_dx"), [(28, 28, 4, 4), (32, 24, 4, 3), (20, 12, 3, 2)])
def test_translation_shifts_by_integers_within_an_eighth_with_zero_fill(h, w, max_dy, max_dx):
    x = images(300, h, w, 2)
    y = apply(policies.rand_translation, x)
    seen = set()
    for xi, yi in zip(x, y, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-max_dy, max_dy + 1)
            for dx in range(-max_dx, max_dx + 1)
            if np.array_equal(yi, shifted(xi, dy, dx))
        ]
        assert len(matches) == 1, "each output must be exactly one integer shift of its input"
        seen.add(matches[0])
    dys, dxs = {d[0] for d in seen}, {d[1] for d in seen}
    assert dys == set(range(-max_dy, max_dy + 1)) and dxs == set(range(-max_dx, max_dx + 1))


# Square sizes as the official code rounds them: int(size / 2 + 0.5).
@pytest.mark.parametrize(("h", "w", "cut_h", "cut_w"), [(28, 28, 14, 14), (30, 20, 15, 10), (27, 21, 14, 11)])
def test_cutout_zeroes_one_half_size_square_clipped_at_borders(h, w, cut_h, cut_w):
    x = images(400, h, w, 3)
    y = apply(policies.rand_cutout, x)
    touched = {"top": 0, "bottom": 0, "left": 0, "right": 0, "inside": 0}
    for xi, yi in zip(x, y, strict=True):
        zero = np.all(yi == 0, axis=-1)
        assert np.all((yi == xi)[~zero]), "pixels outside the square are unchanged"
        rows, cols = np.where(zero.any(axis=1))[0], np.where(zero.any(axis=0))[0]
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        assert zero[r0 : r1 + 1, c0 : c1 + 1].all() and zero.sum() == (r1 - r0 + 1) * (c1 - c0 + 1)
        height, width = r1 - r0 + 1, c1 - c0 + 1
        # Full size unless clipped by a border; a clipped square keeps at least the half past its centre.
        assert height == cut_h or r0 == 0 or r1 == h - 1
        assert width == cut_w or c0 == 0 or c1 == w - 1
        assert (cut_h + 1) // 2 <= height <= cut_h and (cut_w + 1) // 2 <= width <= cut_w
        touched["top"] += r0 == 0
        touched["bottom"] += r1 == h - 1
        touched["left"] += c0 == 0
        touched["right"] += c1 == w - 1
        touched["inside"] += r0 > 0 and r1 < h - 1 and c0 > 0 and c1 < w - 1
    assert all(count > 0 for count in touched.values()), touched


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_gradient_matches_finite_difference(name):
    """With its randomness fixed, each transform is affine in x: the tape gradient must be exact."""
    fn = TRANSFORMS[name]
    x = tf.constant(images(4, 16, 16, 3))
    weights = tf.constant(np.random.default_rng(1).normal(size=x.shape).astype("float32"))
    direction = tf.constant(np.random.default_rng(2).normal(size=x.shape).astype("float32"))

    def objective(v):
        return tf.reduce_sum(fn(v, keras.random.SeedGenerator(7)) * weights)

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = objective(x)
    grad = tape.gradient(value, x)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0
    eps = 1e-2
    numeric = (objective(x + eps * direction) - objective(x - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(float(tf.reduce_sum(grad * direction)), float(numeric), rtol=2e-3, atol=2e-2)


def test_cutout_blocks_gradient_exactly_inside_the_square():
    x = tf.constant(images(8, 16, 16, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = policies.rand_cutout(x, keras.random.SeedGenerator(3))
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, x).numpy()
    np.testing.assert_array_equal(grad == 0, y.numpy() == 0)


def test_seeded_draws_are_reproducible_and_per_sample():
    x = images(32, 16, 16, 3)
    a = keras.ops.convert_to_numpy(policies.diff_augment(x, seed_generator=keras.random.SeedGenerator(5)))
    b = keras.ops.convert_to_numpy(policies.diff_augment(x, seed_generator=keras.random.SeedGenerator(5)))
    c = keras.ops.convert_to_numpy(policies.diff_augment(x, seed_generator=keras.random.SeedGenerator(6)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    same = np.repeat(x[:1], 16, axis=0)  # one image repeated: each copy gets its own draw
    out = keras.ops.convert_to_numpy(policies.diff_augment(same, "brightness", keras.random.SeedGenerator(0)))
    assert len(np.unique(out[:, 0, 0, 0].round(5))) == 16


def test_probability_zero_is_identity_and_one_always_applies():
    x = images(1000, 8, 8, 1)
    gen = keras.random.SeedGenerator(0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(policies.diff_augment(x, p=0.0)), x)
    p_zero = keras.Variable(0.0, trainable=False)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(policies.diff_augment(x, "color", gen, p=p_zero)), x
    )
    always = keras.ops.convert_to_numpy(policies.diff_augment(x, "brightness", gen, p=keras.Variable(1.0)))
    assert np.all(np.abs(always - x).max(axis=(1, 2, 3)) > 0)
    half = keras.ops.convert_to_numpy(policies.diff_augment(x, "brightness", gen, p=0.5))
    changed = np.abs(half - x).max(axis=(1, 2, 3)) > 0
    assert 0.44 < changed.mean() < 0.56


def test_works_under_tf_function_with_new_draws_each_call():
    gen = keras.random.SeedGenerator(0)
    step = tf.function(lambda v: policies.diff_augment(v, "color,translation,cutout", gen))
    x = images(4, 16, 16, 3)
    first, second = step(x).numpy(), step(x).numpy()
    assert first.shape == x.shape and not np.allclose(first, second)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_keep_their_dtype(dtype):
    x = tf.cast(tf.constant(images(8, 16, 16, 3)), dtype)
    y = policies.diff_augment(x, seed_generator=keras.random.SeedGenerator(0))
    assert y.dtype == x.dtype and np.isfinite(tf.cast(y, "float32").numpy()).all()


def test_unknown_policy_lists_valid_names():
    with pytest.raises(ValueError, match="Valid names: color, translation, cutout") as info:
        policies.parse_policy("color,blur")
    assert isinstance(info.value, TinymlKitError) and "'blur'" in str(info.value)


def test_register_custom_policy_and_errors():
    def flip(x, seed):
        return x[:, :, ::-1, :]

    policies.register_policy("test_flip", [flip])
    try:
        x = images(2, 4, 4, 1)
        out = keras.ops.convert_to_numpy(policies.diff_augment(x, "test_flip"))
        np.testing.assert_array_equal(out, x[:, :, ::-1, :])
        assert "test_flip" in policies.available_policies()
        with pytest.raises(PolicyError, match="already registered"):
            policies.register_policy("test_flip", flip)
        policies.register_policy("test_flip", flip, overwrite=True)
    finally:
        policies.unregister_policy("test_flip")
    assert "test_flip" not in policies.available_policies()
    with pytest.raises(PolicyError, match="built in"):
        policies.register_policy("color", flip)
    with pytest.raises(PolicyError, match="identifier"):
        policies.register_policy("a,b", flip)
    with pytest.raises(PolicyError, match="callables"):
        policies.register_policy("empty", [])


def test_policy_strings_normalise():
    assert policies.parse_policy(" color , cutout ") == ("color", "cutout")
    assert policies.parse_policy("none") == () and policies.parse_policy(None) == ()
    assert [f.__name__ for f in policies.policy_transforms("color")] == [
        "rand_brightness",
        "rand_saturation",
        "rand_contrast",
    ]
