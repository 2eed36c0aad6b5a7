"""TinyTL's cost model: Table 2 of the paper, accounting rules, plot."""

from __future__ import annotations

import keras
import pytest

from tinyml_kit.tinytl import METHODS, prepare
from tinyml_kit.tinytl.memory_model import MB, PUBLISHED_MB, analyse, plot_training_memory, training_memory
from tinyml_kit.zoo import proxylessnas_mobile


@pytest.fixture(scope="module")
def table2_backbone():
    return proxylessnas_mobile((224, 224, 3), 1000)


@pytest.mark.parametrize("method", list(PUBLISHED_MB))
def test_reproduces_table2_within_5_percent(table2_backbone, method):
    """The paper's setting: ProxylessNAS-Mobile, 224x224, batch 8, group-norm lite residual
    branches carried by every network (frozen unless trained), a Flowers-102 classifier."""
    report = training_memory(table2_backbone, method, 8, num_classes=102, norm="group", lite_residual=True)
    assert report["total"] / MB == pytest.approx(PUBLISHED_MB[method], rel=0.05)


def test_accounting_rules(table2_backbone):
    last = training_memory(table2_backbone, "last", 8, num_classes=102)
    # FT-Last stores only the classifier input; its peak is the largest forward working set
    assert last["stored_per_sample"] == 1280 * 4
    assert last["peak_layer"] == "block1_expand"
    assert last["peak_per_sample"] == pytest.approx(4 * (16 + 48) * 112 * 112 + 1280 * 4, rel=0.01)
    assert last["trainable_parameters"] == (1280 * 102 + 102) * 4
    bias = training_memory(table2_backbone, "bias", 8, num_classes=102)
    masks = bias["stored_per_sample"] - 1280 * 4
    assert (
        0 < masks < 0.05 * training_memory(table2_backbone, "full", 8, num_classes=102)["stored_per_sample"]
    )
    double = training_memory(table2_backbone, "bias", 16, num_classes=102)
    assert double["activations"] == 2 * bias["activations"]
    assert double["parameters"] == bias["parameters"]
    rows = bias["layers"]
    assert sum(r["trainable_parameters"] + r["frozen_parameters"] for r in rows) == bias["parameters"]
    assert max(r["live"] for r in rows) == bias["peak_per_sample"]


def test_model_as_configured_and_thousand_class_head(table2_backbone):
    """method=None analyses a prepared model's own flags; keeping the 1000-class head costs 5 MB."""
    small = proxylessnas_mobile((64, 64, 3), 10, width_mult=0.35)
    prepared = prepare(small, "lite_residual+bias", 10)
    assert (
        analyse(prepared, 4)["total"]
        == training_memory(small, "lite_residual+bias", 4, num_classes=10)["total"]
    )
    kept = training_memory(table2_backbone, "last", 8)["total"] / MB
    assert kept == pytest.approx(33.6, abs=0.2)


def test_smooth_activations_keep_their_input():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="swish")(inputs)
    x = keras.layers.Activation("sigmoid")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    report = training_memory(model, "bias", 1)
    kept = {r["kind"]: r["stored"] for r in report["layers"]}
    fused = kept.get("silu", kept.get("swish"))  # Keras 3 serialises swish as silu
    assert fused == 16 * 16 * 8 * 4 and kept["Activation"] == 16 * 16 * 8 * 4


def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    small = proxylessnas_mobile((64, 64, 3), 10, width_mult=0.35)
    reports = {name: training_memory(small, name, 8) for name in ("last", "bias")}
    ax = plot_training_memory(reports, published={"last": 1.0}, measured={"bias": 2e6})
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        METHODS["last"].paper_name,
        METHODS["bias"].paper_name,
    ]
