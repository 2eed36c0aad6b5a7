"""Slow tier: seeded random sweeps of shapes, batch sizes, quantisation ranges and options for every
op of these kernels, each checked bit-exact against TFLM like the default-tier cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_engine_kernels_common import (
    KernelLab,
    ModelSpec,
    set_output_quantization_like_input,
)

pytestmark = pytest.mark.slow
RNG = np.random.default_rng(2024)
CASES_PER_FAMILY = 8


def _range() -> tuple[float, float]:
    return float(-RNG.uniform(0.05, 12.0)), float(RNG.uniform(0.05, 12.0))


def _shape(batch_max: int = 2, side_max: int = 9, channels_max: int = 8) -> tuple[int, ...]:
    return (int(RNG.integers(1, batch_max + 1)), int(RNG.integers(1, side_max + 1)),
            int(RNG.integers(1, side_max + 1)), int(RNG.integers(1, channels_max + 1)))


def _binary_cases() -> list[ModelSpec]:
    specs = []
    for i, layer in itertools.product(range(CASES_PER_FAMILY), ("Add", "Multiply")):
        full = _shape()
        mask = [bool(m) for m in RNG.integers(0, 2, size=3)]
        other = (full[0], *(1 if m else d for m, d in zip(mask, full[1:], strict=True)))
        activation = [None, "relu", "relu6"][int(RNG.integers(0, 3))]

        def build(tf, keras, full=full, other=other, layer=layer, activation=activation):
            a = keras.Input(full[1:], batch_size=full[0], name="in0")
            b = keras.Input(other[1:], batch_size=other[0], name="in1")
            y = getattr(keras.layers, layer)()([a, b])
            if activation:
                y = keras.layers.ReLU(max_value=6.0 if activation == "relu6" else None)(y)
            return keras.Model([a, b], y)

        op = "ADD" if layer == "Add" else "MUL"
        specs.append(ModelSpec(f"sweep_{op.lower()}_{i}", build, {"in0": _range(), "in1": _range()}, op))
    return specs


def _max_pool_cases() -> list[ModelSpec]:
    specs = []
    for i in range(CASES_PER_FAMILY):
        shape = _shape(side_max=12)
        pool = (int(RNG.integers(1, 4)), int(RNG.integers(1, 4)))
        strides = (int(RNG.integers(1, 4)), int(RNG.integers(1, 4)))
        padding = "same" if RNG.integers(0, 2) else "valid"
        if padding == "valid":
            shape = (shape[0], max(shape[1], pool[0]), max(shape[2], pool[1]), shape[3])

        def build(tf, keras, shape=shape, pool=pool, strides=strides, padding=padding):
            x = keras.Input(shape[1:], batch_size=shape[0], name="in0")
            return keras.Model(x, keras.layers.MaxPooling2D(pool, strides=strides, padding=padding)(x))

        specs.append(ModelSpec(f"sweep_maxpool_{i}", build, {"in0": _range()}, "MAX_POOL_2D"))
    return specs


def _mean_cases() -> list[ModelSpec]:
    specs = []
    for i in range(CASES_PER_FAMILY):
        shape = _shape(side_max=20, channels_max=12)
        axes = sorted({int(a) for a in RNG.choice([1, 2, 3], size=int(RNG.integers(1, 3)), replace=False)})
        keepdims = bool(RNG.integers(0, 2))
        same_quant = i % 3 == 0

        def build(tf, keras, shape=shape, axes=axes, keepdims=keepdims):
            x = keras.Input(shape[1:], batch_size=shape[0], name="in0")
            return keras.Model(x, keras.layers.Lambda(lambda v: tf.reduce_mean(v, axes, keepdims))(x))

        patch = (lambda data: set_output_quantization_like_input(data, "MEAN")) if same_quant else None
        specs.append(ModelSpec(f"sweep_mean_{i}", build, {"in0": _range()}, "MEAN", patch=patch))
    return specs


def _layout_cases() -> list[ModelSpec]:
    specs = []
    for i in range(CASES_PER_FAMILY // 2):
        shape = _shape()
        pads = [[0, 0]] + [[int(RNG.integers(0, 3)), int(RNG.integers(0, 3))] for _ in range(3)]
        value = None if i % 2 else float(RNG.uniform(-1.0, 1.0))
        perm = [0, *(int(p) + 1 for p in RNG.permutation(3))]
        size = (int(RNG.integers(1, 15)), int(RNG.integers(1, 15)))
        legacy = bool(i % 2)
        axis = int(RNG.integers(1, 4))
        other = tuple(int(RNG.integers(1, 5)) if d == axis else s for d, s in enumerate(shape))

        def pad(tf, keras, shape=shape, pads=pads, value=value):
            x = keras.Input(shape[1:], batch_size=shape[0], name="in0")
            kwargs = {} if value is None else {"constant_values": value}
            return keras.Model(x, keras.layers.Lambda(lambda v: tf.pad(v, pads, **kwargs))(x))

        def transpose(tf, keras, shape=shape, perm=perm):
            x = keras.Input(shape[1:], batch_size=shape[0], name="in0")
            return keras.Model(x, keras.layers.Lambda(lambda v: tf.transpose(v, perm))(x))

        def resize(tf, keras, shape=shape, size=size, legacy=legacy):
            x = keras.Input(shape[1:], batch_size=shape[0], name="in0")
            if legacy:
                fn = lambda v: tf.compat.v1.image.resize_nearest_neighbor(v, size, align_corners=True)  # noqa: E731
            else:
                fn = lambda v: tf.image.resize(v, size, "nearest")  # noqa: E731
            return keras.Model(x, keras.layers.Lambda(fn)(x))

        def concat(tf, keras, shape=shape, other=other, axis=axis):
            a = keras.Input(shape[1:], batch_size=shape[0], name="in0")
            b = keras.Input(other[1:], batch_size=other[0], name="in1")
            return keras.Model([a, b], keras.layers.Concatenate(axis=axis)([a, b]))

        r = {"in0": _range()}
        specs += [ModelSpec(f"sweep_pad_{i}", pad, r, "PAD" if value is None else "PADV2"),
                  ModelSpec(f"sweep_transpose_{i}", transpose, r, "TRANSPOSE"),
                  ModelSpec(f"sweep_resize_{i}", resize, r, "RESIZE_NEAREST_NEIGHBOR"),
                  ModelSpec(f"sweep_concat_{i}", concat, {"in0": r["in0"], "in1": _range()}, "CONCATENATION")]
    return specs


def _activation_cases() -> list[ModelSpec]:
    specs = []
    for i in range(CASES_PER_FAMILY // 2):
        def build(tf, keras):
            x = keras.Input((16, 16, 1), batch_size=1, name="in0")
            layers = [keras.layers.ReLU(), keras.layers.ReLU(max_value=6.0),
                      keras.layers.Activation("sigmoid"), keras.layers.Activation("hard_swish")]
            return keras.Model(x, [layer(x) for layer in layers])

        r = {"in0": (float(-RNG.uniform(0.01, 80.0)), float(RNG.uniform(0.01, 80.0)))}
        specs += [ModelSpec(f"sweep_activations_{i}", build, r, op)
                  for op in ("RELU", "RELU6", "LOGISTIC", "HARD_SWISH")]
    return specs


SWEEP = _binary_cases() + _max_pool_cases() + _mean_cases() + _layout_cases() + _activation_cases()


@pytest.mark.parametrize("spec", SWEEP, ids=lambda s: f"{s.name}-{s.op_type}")
def test_sweep_matches_tflm(lab: KernelLab, spec: ModelSpec) -> None:
    assert lab.verify(spec, samples=20)["ops"] >= 1
