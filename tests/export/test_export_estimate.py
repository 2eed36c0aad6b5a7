"""estimate_mcu_memory: hand-computed SRAM/flash for small graphs, fused and aliased layers."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from tinyml_kit.export.errors import ExportError  # noqa: E402
from tinyml_kit.export.estimate import architecture_key, estimate_mcu_memory  # noqa: E402

layers = keras.layers


def chain() -> keras.Model:
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Rescaling(1 / 255.0),
        layers.Conv2D(4, 3, padding="same", name="conv"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2, name="pool"),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(3, activation="softmax", name="dense"),
    ])


def test_chain_matches_hand_computation():
    est = estimate_mcu_memory(chain())
    # buffers: input 64 B, conv 8x8x4 = 256 B, pool 4x4x4 = 64 B, dense 3 B, softmax 3 B
    assert est.step_names == ["conv", "pool", "dense", "dense/softmax"]
    sizes = sorted(b.size for b in est.problem.buffers.values())
    assert sizes == [3, 3, 64, 64, 256]
    # worst step: conv (input 64 + output 256) or pool (256 + 64); no in-place, no scratch
    assert est.sram_bytes == 320
    # conv: 36 int8 weights + 4 channels x (int32 bias + 2 int32 requant words) = 84
    # dense: 64x3 int8 + 3 x 12 = 228; BatchNormalization folds into the conv: 0
    assert est.weight_bytes == est.flash_bytes == 84 + 228
    assert estimate_mcu_memory(chain(), runtime_flash_bytes=1000).flash_bytes == 312 + 1000


def test_branches_keep_both_inputs_of_add_alive():
    inputs = keras.Input((10, 10, 2))
    a = layers.Conv2D(4, 1, name="a")(inputs)  # 400 B
    b = layers.DepthwiseConv2D(3, padding="same", name="b")(a)  # 400 B, a still needed by add
    c = layers.Add(name="add")([a, b])  # 400 B
    model = keras.Model(inputs, layers.GlobalAveragePooling2D(name="gap")(c))
    est = estimate_mcu_memory(model)
    assert est.step_names == ["a", "b", "add", "gap"]
    assert est.sram_bytes == 1200  # a + b + add live together at the add
    assert est.plan.arena_bytes == est.sram_bytes


def test_padding_fuses_into_convolutions_only():
    inputs = keras.Input((6, 6, 1))
    x = layers.ZeroPadding2D(1, name="pad_conv")(inputs)
    x = layers.Conv2D(2, 3, name="conv")(x)
    x = layers.ZeroPadding2D(1, name="pad_pool")(x)
    x = layers.AveragePooling2D(2, name="pool")(x)
    est = estimate_mcu_memory(keras.Model(inputs, x))
    assert est.step_names == ["conv", "pad_pool", "pool"]


def test_separable_conv_is_two_steps_and_extra_activations_add_a_step():
    inputs = keras.Input((8, 8, 3))
    x = layers.SeparableConv2D(5, 3, padding="same", name="sep")(inputs)
    x = layers.Conv2D(2, 1, activation="sigmoid", name="gate")(x)
    est = estimate_mcu_memory(keras.Model(inputs, x))
    assert est.step_names == ["sep/depthwise", "sep/pointwise", "gate", "gate/sigmoid"]
    # depthwise 27 + 3 x 12, pointwise 15 + 5 x 12, gate 10 + 2 x 12
    assert est.weight_bytes == 27 + 36 + 15 + 60 + 10 + 24


def test_unknown_input_dimensions_need_input_shape():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, layers.Conv2D(8, 3, padding="same")(inputs))
    with pytest.raises(ExportError, match="input_shape"):
        estimate_mcu_memory(model)
    small = estimate_mcu_memory(model, input_shape=(16, 16, 3))
    large = estimate_mcu_memory(model, input_shape=(32, 32, 3))
    assert small.sram_bytes == 16 * 16 * (3 + 8)
    assert large.sram_bytes == 4 * small.sram_bytes
    assert large.flash_bytes == small.flash_bytes


def test_architecture_key_follows_layers_and_weight_shapes():
    model = chain()
    key = architecture_key(model)
    assert architecture_key(model) == key
    model.layers[-1].set_weights([w * 0 for w in model.layers[-1].get_weights()])
    assert architecture_key(model) == key  # training changes values, not the architecture
    model.add(layers.Dense(2, name="extra"))
    assert architecture_key(model) != key


def test_subclassed_models_are_refused_with_a_fix():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(keras.ops.zeros((1, 3)))
    with pytest.raises(ExportError, match=r"functional API or keras\.Sequential"):
        estimate_mcu_memory(net)
