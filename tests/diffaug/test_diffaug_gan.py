"""DataEfficientGAN training, EMA, losses, callbacks (AdaptiveAugment, GANMonitor) and reference models."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tinyml_kit.diffaug import (
    AdaptiveAugment,
    DataEfficientGAN,
    DiffAugError,
    DiffAugment,
    FeatureExtractor,
    FIDMonitor,
    GANMonitor,
    OverfitProbe,
    ReferenceFeatures,
    models,
    score_images,
)
from tinyml_kit.diffaug.gan import discriminator_loss, generator_loss

LATENT = 8


def tiny_pair(shape=(16, 16, 1)):
    return models.dcgan_generator(LATENT, shape, width=8), models.dcgan_discriminator(shape, width=8)


def real_images(n: int = 32, shape=(16, 16, 1)) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype("float32")


def compiled(gan: DataEfficientGAN, lr: float = 2e-4) -> DataEfficientGAN:
    gan.compile(keras.optimizers.Adam(lr, beta_1=0.5), keras.optimizers.Adam(lr, beta_1=0.5))
    return gan


def test_fit_hinge_with_r1_gives_finite_logs_a_distinct_ema_and_grids(tmp_path):
    keras.utils.set_random_seed(0)
    g, d = tiny_pair()
    gan = compiled(DataEfficientGAN(g, d, augment=DiffAugment(seed=0), r1_gamma=1.0, seed=0))
    before = [w.copy() for w in g.get_weights()]
    monitor = GANMonitor(tmp_path / "grids", every_n_epochs=1, n=9)
    history = gan.fit(real_images(), batch_size=8, epochs=2, verbose=0, callbacks=[monitor]).history
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "r1", "p"):
        assert key in history and np.all(np.isfinite(history[key])), key
    assert history["r1"][-1] > 0 and history["p"][-1] == 1.0
    assert -1.0 <= history["d_real"][-1] <= 1.0
    assert any(not np.allclose(a, b) for a, b in zip(before, g.get_weights(), strict=True))
    ema, live = gan.ema_generator.get_weights(), g.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(ema, live, strict=True)), "EMA must lag the generator"
    assert gan.sample(5, seed=1).shape == (5, 16, 16, 1)
    np.testing.assert_array_equal(gan.sample(3, seed=1), gan.sample(3, seed=1))
    names = sorted(p.name for p in (tmp_path / "grids").iterdir())
    assert names == ["samples_epoch_0001.png", "samples_epoch_0002.png", "samples_final.png"]
    with Image.open(tmp_path / "grids" / "samples_final.png") as picture:
        assert picture.size == (3 * 17 + 1, 3 * 17 + 1) and picture.mode == "L"


def test_ns_loss_without_augmentation_or_ema():
    g, d = tiny_pair()
    gan = compiled(DataEfficientGAN(g, d, augment=None, loss="ns", ema=None))
    history = gan.fit(real_images(16), batch_size=8, epochs=1, verbose=0).history
    assert gan.ema_generator is g and gan.augment is None
    assert np.isfinite(history["d_loss"][0]) and history["p"][0] == 0.0


def test_generator_gradient_flows_through_the_augmentation():
    g, d = tiny_pair()
    gan = DataEfficientGAN(g, d, augment=DiffAugment(seed=0))
    z = tf.random.normal((4, LATENT))
    with tf.GradientTape() as tape:
        fake = g(z, training=True)
        tape.watch(fake)
        loss = generator_loss("hinge", gan._discriminate(fake))
    grad = tape.gradient(loss, fake)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0


def test_losses_match_definitions():
    real, fake = tf.constant([[2.0], [0.5]]), tf.constant([[-2.0], [0.0]])
    assert float(discriminator_loss("hinge", real, fake)) == pytest.approx(0.25 + 0.5)
    assert float(generator_loss("hinge", fake)) == pytest.approx(1.0)
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    expected = np.mean(softplus(-np.array([2.0, 0.5]))) + np.mean(softplus(np.array([-2.0, 0.0])))
    assert float(discriminator_loss("ns", real, fake)) == pytest.approx(expected, rel=1e-5)


def test_constructor_validation():
    g, d = tiny_pair()
    with pytest.raises(DiffAugError, match="Valid choices: hinge, ns"):
        DataEfficientGAN(g, d, loss="wgan")
    with pytest.raises(DiffAugError, match="r1_gamma"):
        DataEfficientGAN(g, d, r1_gamma=-1)
    with pytest.raises(DiffAugError, match="augment"):
        DataEfficientGAN(g, d, augment=3)
    assert DataEfficientGAN(g, d, augment="translation").augment.policy == "translation"


def test_config_round_trip():
    g, d = tiny_pair()
    gan = DataEfficientGAN(
        g, d, augment=DiffAugment("color", p=0.3), loss="ns", r1_gamma=2.0, ema=0.9, seed=4
    )
    clone = DataEfficientGAN.from_config(gan.get_config())
    assert (clone.loss_kind, clone.r1_gamma, clone.ema, clone.latent_dim, clone.seed) == (
        "ns",
        2.0,
        0.9,
        LATENT,
        4,
    )
    assert clone.augment.policy == "color" and clone.augment.probability == pytest.approx(0.3)
    assert [w.shape for w in clone.generator.weights] == [w.shape for w in g.weights]


class ConstantLogit(keras.layers.Layer):
    """A discriminator head whose output ignores the image: a mocked D signal."""

    def __init__(self, value: float, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def call(self, x):
        return 0.0 * keras.ops.mean(x, axis=[1, 2, 3])[:, None] + self.value  # zero but defined gradient


def mocked_gan(logit: float, p: float) -> DataEfficientGAN:
    g, _ = tiny_pair()
    d = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(1, 3), ConstantLogit(logit)])
    return compiled(DataEfficientGAN(g, d, augment=DiffAugment("translation", p=p, seed=0)))


def test_adaptive_augment_raises_p_when_d_is_confident_on_reals():
    logit, direction = 3.0, 1
    gan = mocked_gan(logit, p=0.5)
    ada = AdaptiveAugment(target=0.6, speed=0.5, interval=2)
    history = gan.fit(real_images(64), batch_size=8, epochs=1, verbose=0, callbacks=[ada]).history
    # sign(D(real)) = +1 > target (overfitting): p rises by 4 adjustments of 0.5 * 16 / 1000 each.
    assert len(ada.history) == 4 and all(r == pytest.approx(np.sign(logit)) for _, r, _ in ada.history)
    assert gan.augment.probability == pytest.approx(0.5 + direction * 4 * 0.008, abs=1e-6)
    assert history["p"][-1] == pytest.approx(gan.augment.probability)


def test_adaptive_augment_rule_on_a_mocked_signal():
    gan = mocked_gan(1.0, p=0.99)
    ada = AdaptiveAugment(target=0.6, speed=1.0, interval=1)
    ada.set_model(gan)
    gan.real_sign_sum.assign(90.0)  # r_t = 0.9 > 0.6 with 100 images: p += 0.1, clipped at 1
    gan.real_sign_count.assign(100.0)
    ada.on_train_batch_end(0)
    assert gan.augment.probability == 1.0 and ada.history[-1][1] == pytest.approx(0.9)
    gan.real_sign_sum.assign(20.0)  # r_t = 0.2 < 0.6: p -= 0.1
    gan.real_sign_count.assign(100.0)
    ada.on_train_batch_end(1)
    assert gan.augment.probability == pytest.approx(0.9)
    assert gan.pop_real_sign() == (0.0, 0.0)


def test_adaptive_augment_needs_an_augment_layer():
    g, d = tiny_pair()
    gan = compiled(DataEfficientGAN(g, d, augment=None))
    with pytest.raises(DiffAugError, match="needs a DiffAugment layer"):
        gan.fit(real_images(16), batch_size=8, epochs=1, verbose=0, callbacks=[AdaptiveAugment()])
    with pytest.raises(ValueError, match="speed"):
        AdaptiveAugment(speed=0)


def mean_logit(d: keras.Model, images: np.ndarray) -> float:
    return float(np.mean(keras.ops.convert_to_numpy(d(images, training=False))))


def test_overfit_probe_records_d_on_train_vs_heldout_reals_each_epoch():
    g, d = tiny_pair()
    gan = compiled(DataEfficientGAN(g, d, augment=None, seed=0))
    train, heldout = real_images(16), -real_images(12)
    probe = OverfitProbe(train, heldout, batch_size=5)
    gan.fit(train, batch_size=8, epochs=3, verbose=0, callbacks=[probe])
    assert [row["step"] for row in probe.history] == [2, 4, 6]
    last, expected = probe.history[-1], mean_logit(d, train) - mean_logit(d, heldout)
    assert last["d_train"] == pytest.approx(mean_logit(d, train), abs=1e-5)
    assert last["gap"] == pytest.approx(expected, abs=1e-5)
    assert last["raw_gap"] == pytest.approx(expected, abs=1e-5)


def test_overfit_probe_augments_with_its_own_random_stream():
    g, d = tiny_pair()
    layer = DiffAugment("translation,cutout", seed=0)
    gan = compiled(DataEfficientGAN(g, d, augment=layer, seed=0))
    train = real_images(16)
    probe = OverfitProbe(train, train, seed=1)
    probe.set_model(gan)
    state = keras.ops.convert_to_numpy(layer.seed_generator.state).copy()
    probe.on_epoch_end(0)
    row = probe.history[-1]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.seed_generator.state), state)
    assert row["raw_gap"] == pytest.approx(0.0, abs=1e-6)  # same images, no augmentation
    assert row["gap"] != pytest.approx(0.0, abs=1e-6)  # independent augmentation draws for the two sets
    with pytest.raises(ValueError, match="same image shape"):
        OverfitProbe(train, real_images(4, shape=(8, 8, 1)))


def pixel_features() -> FeatureExtractor:
    """Features = 4x4 average-pooled pixels: cheap, deterministic, and sensitive to what G draws."""
    pool = keras.Sequential([keras.layers.AveragePooling2D(4), keras.layers.Flatten()])
    return FeatureExtractor("pixels", pool)


def test_fid_monitor_scores_the_ema_generator_every_n_epochs():
    g, d = tiny_pair()
    gan = compiled(DataEfficientGAN(g, d, augment=None, seed=0))
    extractor = pixel_features()
    reference = ReferenceFeatures.from_images(extractor, real_images(64))
    monitor = FIDMonitor(extractor, reference, every_n_epochs=2, n_samples=40, seed=3)
    history = gan.fit(real_images(), batch_size=8, epochs=4, verbose=0, callbacks=[monitor]).history
    assert [row["step"] for row in monitor.history] == [8, 16]
    expected = score_images(extractor, reference, gan.sample(40, seed=3 + 777), kid_subset_size=40, seed=3)
    assert monitor.history[-1]["fid"] == pytest.approx(expected["fid"], rel=1e-6)
    assert history["fid"][-1] == pytest.approx(expected["fid"], rel=1e-6)
    with pytest.raises(ValueError, match="every_n_epochs >= 1"):
        FIDMonitor(extractor, reference, every_n_epochs=0)


@pytest.mark.slow
def test_mixed_precision_training_step():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        g, d = tiny_pair()
        gan = compiled(DataEfficientGAN(g, d, r1_gamma=0.5))
        assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
        history = gan.fit(real_images(16), batch_size=8, epochs=1, verbose=0).history
        assert all(np.isfinite(history[k][0]) for k in ("d_loss", "g_loss", "r1"))
        assert gan.sample(2).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize(
    ("arch", "shape"), [("dcgan", (28, 28, 1)), ("resnet", (32, 32, 3)), ("resnet", (28, 28, 1))]
)
def test_reference_architectures_shapes(arch, shape):
    g, d = models.build_pair(arch, shape, latent_dim=16, width=16)
    images = g(np.zeros((2, 16), "float32"))
    assert tuple(images.shape) == (2, *shape) and float(keras.ops.max(keras.ops.abs(images))) <= 1.0
    assert tuple(d(images).shape) == (2, 1) and d.output.dtype == "float32"


def test_architecture_errors():
    with pytest.raises(DiffAugError, match="divisible by 4"):
        models.dcgan_generator(image_shape=(30, 30, 1))
    with pytest.raises(DiffAugError, match="Valid choices: dcgan, resnet"):
        models.build_pair("stylegan9", (32, 32, 3))
