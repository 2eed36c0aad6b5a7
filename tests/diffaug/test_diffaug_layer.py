"""The DiffAugment layer: training/inference behaviour, p as a variable, serialisation, fit, precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tinyml_kit.diffaug import DiffAugment


def images(n: int = 8, h: int = 16, w: int = 16, c: int = 3) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, h, w, c)).astype("float32")


def test_noop_at_inference_unless_training_or_always():
    x = images()
    layer = DiffAugment(seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(DiffAugment(always=True, seed=0)(x)), x)


def test_same_seed_same_draws_and_calls_differ():
    x = images()
    a, b = DiffAugment(seed=3), DiffAugment(seed=3)
    first_a, first_b = a(x, training=True), b(x, training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first_a), keras.ops.convert_to_numpy(first_b))
    assert not np.allclose(
        keras.ops.convert_to_numpy(a(x, training=True)), keras.ops.convert_to_numpy(first_a)
    )


def test_p_is_a_non_trainable_variable_read_inside_a_traced_function():
    layer = DiffAugment("brightness", p=1.0, seed=0)
    assert layer.p in layer.non_trainable_weights and not layer.trainable_weights
    step = tf.function(lambda v: layer(v, training=True))
    x = images(64)
    assert np.all(np.abs(step(x).numpy() - x).max(axis=(1, 2, 3)) > 0)
    layer.p.assign(0.0)  # no retracing needed: the traced step reads the variable
    np.testing.assert_array_equal(step(x).numpy(), x)
    assert layer.probability == 0.0


@pytest.mark.parametrize("bad", [-0.1, 1.5, "x", True])
def test_rejects_invalid_probability(bad):
    with pytest.raises(ValueError, match="Expected `p` to be a probability in"):
        DiffAugment(p=bad)


def test_unknown_policy_is_a_value_error():
    with pytest.raises(ValueError, match="Unknown DiffAugment policy 'colour'"):
        DiffAugment("colour")


def test_config_round_trip_keeps_current_p(tmp_path):
    layer = DiffAugment("translation, cutout", p=0.25, always=True, seed=11, name="aug")
    layer.p.assign(0.4)
    config = layer.get_config()
    assert config["policy"] == "translation,cutout" and config["p"] == pytest.approx(0.4)
    clone = DiffAugment.from_config(config)
    assert (clone.policy, clone.always, clone.seed, clone.name) == ("translation,cutout", True, 11, "aug")
    assert clone.probability == pytest.approx(0.4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, DiffAugment) and restored.get_config() == config

    model = keras.Sequential(
        [keras.Input((16, 16, 3)), DiffAugment("color", p=0.7), keras.layers.Conv2D(2, 3)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], DiffAugment) and loaded.layers[0].probability == pytest.approx(0.7)
    x = images()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_augments_inside_fit_and_not_in_predict():
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), DiffAugment(seed=0), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = images(16), np.zeros(16, dtype="int32")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mixed_precision_outputs_float16_with_finite_gradients():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = DiffAugment(seed=0)
        x = tf.constant(images())
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            total = tf.reduce_sum(tf.cast(y, "float32"))
        grad = tape.gradient(total, x)
        assert y.dtype == tf.float16 and layer.p.dtype == "float32"
        assert np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_output_shape_and_empty_policy():
    layer = DiffAugment("none")
    assert layer.compute_output_shape((None, 28, 28, 1)) == (None, 28, 28, 1)
    x = images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=True)), x)
