"""Reference GAN architectures for small images (28x28, 32x32; any size divisible by 4).

* ``dcgan_generator`` / ``dcgan_discriminator``: DCGAN (Radford et al. 2016) with transposed convolutions,
  BatchNorm in G, LeakyReLU and bias-free stride-2 convolutions in D (as the PyTorch DCGAN example).
* ``resnet_generator`` / ``resnet_discriminator``: a BigGAN-lite pair (residual up/down blocks,
  nearest-neighbour upsampling, average-pool downsampling, global sum pooling) as used for CIFAR in the
  DiffAugment experiments, without class conditioning or self-attention.

Discriminators output one logit per image in float32 (safe under mixed precision) and can wrap their
convolutions and dense layers in spectral normalisation. Generators end in ``tanh`` (range ``[-1, 1]``).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from tinyml_kit.diffaug.errors import DiffAugError
from tinyml_kit.diffaug.train import ARCHITECTURES


def _check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(image_shape) != 3 or image_shape[0] % 4 or image_shape[1] % 4:
        raise DiffAugError(
            f"Expected image_shape (H, W, C) with H and W divisible by 4 (e.g. (28, 28, 1), (32, 32, 3)). "
            f"Received: image_shape={image_shape}"
        )
    return tuple(int(d) for d in image_shape)


def _maybe_sn(layer: layers.Layer, spectral_norm: bool) -> layers.Layer:
    return layers.SpectralNormalization(layer) if spectral_norm else layer


def dcgan_generator(
    latent_dim: int = 128, image_shape: tuple[int, int, int] = (28, 28, 1), width: int = 64
) -> keras.Model:
    """DCGAN generator: dense to ``H/4 x W/4 x 2w``, two stride-2 transposed convs, ``tanh`` output."""
    h, w, c = _check_shape(image_shape)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense((h // 4) * (w // 4) * width * 2, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((h // 4, w // 4, width * 2))(x)
    for filters in (width, width // 2):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Conv2D(c, 3, padding="same")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model(z, images, name="dcgan_generator")


def dcgan_discriminator(
    image_shape: tuple[int, int, int] = (28, 28, 1), width: int = 64, spectral_norm: bool = False
) -> keras.Model:
    """DCGAN discriminator: stride-2 convs (w, 2w), LeakyReLU(0.2), dense logit."""
    image_shape = _check_shape(image_shape)
    images = keras.Input(image_shape, name="images")
    x = images
    for filters in (width, width * 2):
        x = _maybe_sn(layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=False), spectral_norm)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    logits = _maybe_sn(layers.Dense(1), spectral_norm)(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(images, logits, name="dcgan_discriminator")


def _g_block(x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
    """BN-ReLU-up-conv-BN-ReLU-conv with a 1x1-conv upsampled shortcut."""
    shortcut = layers.Conv2D(filters, 1)(layers.UpSampling2D(2)(x))
    y = layers.ReLU()(layers.BatchNormalization()(x))
    y = layers.Conv2D(filters, 3, padding="same")(layers.UpSampling2D(2)(y))
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.Conv2D(filters, 3, padding="same")(y)
    return layers.Add()([shortcut, y])


def _d_block(
    x: keras.KerasTensor, filters: int, sn: Callable, downsample: bool, first: bool
) -> keras.KerasTensor:
    """(ReLU)-conv-ReLU-conv-(avgpool) with a 1x1-conv (pooled) shortcut, as BigGAN's D blocks."""
    y = x if first else layers.ReLU()(x)
    y = sn(layers.Conv2D(filters, 3, padding="same"))(y)
    y = sn(layers.Conv2D(filters, 3, padding="same"))(layers.ReLU()(y))
    shortcut = x
    if first:  # the first block pools before its shortcut conv
        shortcut = layers.AveragePooling2D(2)(shortcut) if downsample else shortcut
        shortcut = sn(layers.Conv2D(filters, 1))(shortcut)
    elif downsample or x.shape[-1] != filters:
        shortcut = sn(layers.Conv2D(filters, 1))(shortcut)
        shortcut = layers.AveragePooling2D(2)(shortcut) if downsample else shortcut
    if downsample:
        y = layers.AveragePooling2D(2)(y)
    return layers.Add()([shortcut, y])


def resnet_generator(
    latent_dim: int = 128, image_shape: tuple[int, int, int] = (32, 32, 3), width: int = 128
) -> keras.Model:
    """BigGAN-lite generator: dense to ``H/4 x W/4 x w``, two residual up blocks, BN-ReLU-conv-tanh."""
    h, w, c = _check_shape(image_shape)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Reshape((h // 4, w // 4, width))(layers.Dense((h // 4) * (w // 4) * width)(z))
    for _ in range(2):
        x = _g_block(x, width)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2D(c, 3, padding="same")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model(z, images, name="resnet_generator")


def resnet_discriminator(
    image_shape: tuple[int, int, int] = (32, 32, 3), width: int = 128, spectral_norm: bool = True
) -> keras.Model:
    """BigGAN-lite discriminator: two down blocks, two plain blocks, ReLU, global sum pool, dense logit."""
    image_shape = _check_shape(image_shape)
    sn = (lambda layer: layers.SpectralNormalization(layer)) if spectral_norm else (lambda layer: layer)
    images = keras.Input(image_shape, name="images")
    x = _d_block(images, width, sn, downsample=True, first=True)
    x = _d_block(x, width, sn, downsample=True, first=False)
    x = _d_block(x, width, sn, downsample=False, first=False)
    x = _d_block(x, width, sn, downsample=False, first=False)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Rescaling(float((image_shape[0] // 4) * (image_shape[1] // 4)))(x)  # sum = mean * H*W
    logits = sn(layers.Dense(1))(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(images, logits, name="resnet_discriminator")


def build_pair(
    arch: str,
    image_shape: tuple[int, int, int],
    latent_dim: int = 128,
    width: int | None = None,
    spectral_norm: bool | None = None,
) -> tuple[keras.Model, keras.Model]:
    """``(generator, discriminator)`` of a named architecture (``"dcgan"`` or ``"resnet"``)."""
    if arch == "dcgan":
        w = width or 64
        sn = bool(spectral_norm)
        return dcgan_generator(latent_dim, image_shape, w), dcgan_discriminator(image_shape, w, sn)
    if arch == "resnet":
        w = width or 128
        sn = True if spectral_norm is None else spectral_norm
        return resnet_generator(latent_dim, image_shape, w), resnet_discriminator(image_shape, w, sn)
    raise DiffAugError(f"Unknown architecture {arch!r}. Valid choices: {', '.join(ARCHITECTURES)}.")
