"""TinyTL's training-memory cost model (the paper's Table 2 "memory" column), for Keras models.

The accounting follows the official profiler (``tinytl/utils/memory_cost_profiler.py`` of
mit-han-lab/tinyml) and the training script that reports it (``memory_cost / 1e6``):

* **Parameters**: every weight, 32 bits if it trains, ``frozen_param_bits`` (8) if frozen; running
  statistics of batch norm are not parameters (the official networks use group norm, and PyTorch
  keeps statistics as buffers). Optimizer state and gradients are not counted.
* **Stored activations** (kept for backward, per sample, ``activation_bits`` = 32): the input of a
  conv / depthwise / dense layer whose kernel trains; the input of a normalisation layer whose scale
  (gamma) trains; 1 bit per element for ReLU / ReLU6 / LeakyReLU and the full input for sigmoid,
  tanh, hard-sigmoid, (hard-)swish and GELU, when the gradient must pass through them (a trainable
  variable lies upstream; ``last`` therefore stores only the classifier's input).
* **Working memory** of the layer being computed: conv ``input + output / groups`` (depthwise:
  groups = channels), dense ``input + output``, normalisation and activations ``input``; other
  layers (pooling, padding, add, resize) none.
* **Identity shortcuts**: the block input is counted while its block runs.
* **Peak**: ``max over layers (working + stored so far + shortcut)``, in execution order, with
  lite residual branches running after their block's main branch; memory = ``peak * batch +
  parameters``. Table 2 reports it in MB = 10^6 bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from tinyml_kit.tinytl.graph import NORM_LAYERS, GraphView
from tinyml_kit.tinytl.lean_layers import activation_name
from tinyml_kit.tinytl.lite_residual import LiteResidual
from tinyml_kit.tinytl.methods import METHODS, get_method

MB = 1e6  # the official script divides bytes by 1e6
SMOOTH_ACTIVATIONS = {"sigmoid", "tanh", "hard_sigmoid", "hard_swish", "hard_silu", "swish", "silu", "gelu"}
RELU_ACTIVATIONS = {"relu", "relu6", "leaky_relu"}
STATISTIC_NAMES = ("moving_mean", "moving_variance")

# TinyTL Table 2 (ProxylessNAS-Mobile, 224x224, batch 8), MB.
PUBLISHED_MB = {
    "full": 391,
    "norm+last": 192,
    "last": 31,
    "bias": 32,
    "lite_residual": 37,
    "lite_residual+bias": 37,
}


@dataclass
class LayerCost:
    """Cost terms of one (sub)layer, bytes per sample except the parameter bytes."""

    name: str
    kind: str
    input_elements: int
    stored: float  # kept for backward
    working: float  # needed while the layer computes
    shortcut: float  # identity-shortcut input alive meanwhile
    live: float  # working + stored before this layer + shortcut
    trainable_parameters: int  # bytes
    frozen_parameters: int  # bytes


def _elements(shape: Any) -> int:
    return int(np.prod([d for d in tuple(shape)[1:]], dtype=np.int64))


def _parameter_bytes(layer: keras.layers.Layer, trainable_bits: int, frozen_bits: int) -> tuple[int, int]:
    trainable_vars = {id(v) for v in layer.trainable_weights}
    trainable = frozen = 0
    for variable in layer.weights:
        if variable.name.split("/")[-1] in STATISTIC_NAMES:
            continue
        size = int(np.prod(variable.shape, dtype=np.int64))
        if id(variable) in trainable_vars:
            trainable += size * trainable_bits // 8
        else:
            frozen += size * frozen_bits // 8
    return trainable, frozen


class _Accountant:
    """Walks layers in execution order and keeps the official profiler's running totals."""

    def __init__(self, act_bytes: float, trainable_bits: int, frozen_bits: int) -> None:
        self.act_bytes = act_bytes
        self.bits = (trainable_bits, frozen_bits)
        self.stored = 0.0
        self.peak = 0.0
        self.peak_layer = ""
        self.rows: list[LayerCost] = []

    def add(
        self,
        layer: keras.layers.Layer,
        name: str,
        in_shape: Any,
        out_shape: Any,
        shortcut: float,
        backward: bool,
        params: bool = True,
    ) -> None:
        ab = self.act_bytes
        n_in, n_out = _elements(in_shape), _elements(out_shape)
        trainable = {id(v) for v in layer.trainable_weights}
        stored = working = 0.0
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.DepthwiseConv2D | keras.layers.Conv2D):
            groups = int(in_shape[-1]) if isinstance(layer, keras.layers.DepthwiseConv2D) else layer.groups
            working = n_in * ab + (n_out * ab) // groups
            stored = n_in * ab if id(layer.kernel) in trainable else 0.0
        elif isinstance(layer, keras.layers.Dense):
            working = (n_in + n_out) * ab
            stored = n_in * ab if id(layer.kernel) in trainable else 0.0
        elif isinstance(layer, NORM_LAYERS):
            working = n_in * ab
            gamma = getattr(layer, "gamma", None)
            stored = n_in * ab if gamma is not None and id(gamma) in trainable else 0.0
        else:
            relu = isinstance(layer, keras.layers.ReLU | keras.layers.LeakyReLU)
            act = activation_name(layer) if isinstance(layer, keras.layers.Activation) else None
            if relu or act in RELU_ACTIVATIONS:
                working, stored = n_in * ab, (n_in / 8 if backward else 0.0)
            elif act in SMOOTH_ACTIVATIONS:
                working, stored = n_in * ab, (n_in * ab if backward else 0.0)
        trainable_p, frozen_p = _parameter_bytes(layer, *self.bits) if params else (0, 0)
        self._record(name, kind, n_in, stored, working, shortcut, trainable_p, frozen_p)
        fused = activation_name(layer) if not isinstance(layer, keras.layers.Activation) else None
        if fused in RELU_ACTIVATIONS | SMOOTH_ACTIVATIONS:  # e.g. Conv2D(activation="relu")
            smooth = fused in SMOOTH_ACTIVATIONS
            through = backward or bool(trainable)  # the layer's own bias lies upstream of it
            kept = (n_out * ab if smooth else n_out / 8) if through else 0.0
            self._record(f"{name}/{fused}", fused, n_out, kept, n_out * ab, shortcut, 0, 0)

    def _record(
        self,
        name: str,
        kind: str,
        n_in: int,
        stored: float,
        working: float,
        shortcut: float,
        trainable_p: int,
        frozen_p: int,
    ) -> None:
        live = working + self.stored + shortcut
        if live > self.peak:
            self.peak, self.peak_layer = live, name
        self.rows.append(LayerCost(name, kind, n_in, stored, working, shortcut, live, trainable_p, frozen_p))
        self.stored += stored


def _shortcut_windows(view: GraphView) -> dict[int, float]:
    """Bytes-per-element count of identity shortcuts alive during each call index (exclusive window)."""
    alive: dict[int, float] = {}
    for call in view.calls:
        if not isinstance(call.layer, keras.layers.Add) or len(call.inputs) < 2:
            continue
        producers = [view.producer.get(t) for t in call.inputs]
        starts = [p.index if p is not None else -1 for p in producers]
        skip = call.inputs[int(np.argmin(starts))]
        for index in range(min(starts) + 1, call.index):
            alive[index] = alive.get(index, 0.0) + _elements(view.shape(skip))
    return alive


def _upstream_trainable(view: GraphView) -> dict[int, bool]:
    """For each call: does a trainable variable lie upstream of (or in) its inputs' producers?"""
    flag: dict[int, bool] = {}
    result: dict[int, bool] = {}
    for call in view.calls:
        upstream = any(flag.get(t, False) for t in call.inputs)
        result[call.index] = upstream
        here = upstream or bool(call.layer.trainable_weights)
        for t in call.outputs:
            flag[t] = here
    return result


def analyse(
    model: keras.Model,
    batch_size: int = 8,
    *,
    activation_bits: int = 32,
    trainable_param_bits: int = 32,
    frozen_param_bits: int = 8,
) -> dict[str, Any]:
    """The cost model applied to ``model`` as it is: its current trainable flags decide."""
    view = GraphView(model)
    acc = _Accountant(activation_bits / 8, trainable_param_bits, frozen_param_bits)
    shortcuts = _shortcut_windows(view)
    upstream = _upstream_trainable(view)
    ab = activation_bits / 8
    for call in view.calls:
        shortcut = shortcuts.get(call.index, 0.0) * ab
        in_shape = view.shape(call.inputs[0]) if call.inputs else ()
        out_shape = view.shape(call.outputs[0])
        if isinstance(call.layer, LiteResidual):
            _add_lite_residual(acc, call.layer, in_shape, shortcut)
            continue
        acc.add(call.layer, call.layer.name, in_shape, out_shape, shortcut, upstream[call.index])
    trainable = sum(r.trainable_parameters for r in acc.rows)
    frozen = sum(r.frozen_parameters for r in acc.rows)
    activations = acc.peak * batch_size
    return {
        "batch_size": batch_size,
        "total": activations + trainable + frozen,
        "activations": activations,
        "parameters": trainable + frozen,
        "trainable_parameters": trainable,
        "frozen_parameters": frozen,
        "peak_per_sample": acc.peak,
        "stored_per_sample": acc.stored,
        "peak_layer": acc.peak_layer,
        "layers": [asdict(r) for r in acc.rows],
        "conventions": {
            "activation_bits": activation_bits,
            "trainable_param_bits": trainable_param_bits,
            "frozen_param_bits": frozen_param_bits,
            "MB": MB,
        },
    }


def _add_lite_residual(acc: _Accountant, layer: LiteResidual, block_shape: tuple, shortcut: float) -> None:
    """A branch's sublayers, after its block's main branch (backward needed when it trains)."""
    shape = block_shape
    backward = bool(layer.trainable_weights)
    for sub in layer.sublayers:
        out = sub.compute_output_shape(shape)
        acc.add(
            sub, f"{layer.name}/{sub.name.removeprefix(layer.name + '_')}", shape, out, shortcut, backward
        )
        shape = out


def training_memory(
    model: keras.Model,
    method: str | None = None,
    batch_size: int = 8,
    *,
    num_classes: int | None = None,
    activation_bits: int = 32,
    trainable_param_bits: int = 32,
    frozen_param_bits: int = 8,
    **prepare_options: Any,
) -> dict[str, Any]:
    """TinyTL's modelled training memory (bytes) of ``model`` trained with ``method``.

    Args:
        model: a plain backbone (with ``method``: what ``prepare(model, method, ...)`` would build
            is analysed, lite residual branches and new classifier included), or a model already
            returned by ``prepare`` (``method=None``: its current trainable flags are used).
        method: a TinyTL method name (``tinytl.METHODS``) or ``None``.
        batch_size: training batch size (activations scale with it, parameters do not).
        num_classes: classes of the new classifier (default: those of ``model``'s classifier).
        activation_bits, trainable_param_bits, frozen_param_bits: storage precisions
            (paper: 32, 32, 8).
        **prepare_options: forwarded to :func:`~tinyml_kit.tinytl.prepare` (``norm``, ``expand``...).

    Returns:
        ``{"total", "activations", "parameters", "trainable_parameters", "frozen_parameters"}`` in
        bytes, plus ``"peak_per_sample"``, ``"peak_layer"``, ``"method"``, ``"batch_size"``, the
        per-layer breakdown ``"layers"`` (list of dicts, see :class:`LayerCost`) and
        ``"conventions"``. Divide by ``MB`` (10^6) to compare with the paper.
    """
    if method is not None:
        from tinyml_kit.tinytl.transform import prepare

        get_method(method)
        model = prepare(model, method, num_classes, **prepare_options)
    report = analyse(
        model, batch_size, activation_bits=activation_bits, trainable_param_bits=trainable_param_bits,
        frozen_param_bits=frozen_param_bits,
    )  # fmt: skip
    report["method"] = method
    return report


def plot_training_memory(
    reports: dict[str, dict[str, Any]],
    ax: Any = None,
    published: dict[str, float] | None = None,
    measured: dict[str, float] | None = None,
) -> Any:
    """Bar chart of modelled memory per method (activations + parameters, MB = 10^6 bytes).

    Args:
        reports: method name -> :func:`training_memory` result.
        ax: a matplotlib ``Axes`` (default: a new figure).
        published: method -> MB to mark with a black tick (e.g. ``PUBLISHED_MB``).
        measured: method -> measured peak bytes to mark with a red dot.

    Returns:
        The ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    names = list(reports)
    x = np.arange(len(names))
    acts = np.array([reports[n]["activations"] / MB for n in names])
    params = np.array([reports[n]["parameters"] / MB for n in names])
    ax.bar(x, acts, label="activations (model)", color="#4c72b0")
    ax.bar(x, params, bottom=acts, label="parameters (model)", color="#dd8452")
    if published:
        marks = [(i, published[n]) for i, n in enumerate(names) if n in published]
        if marks:
            ax.scatter(*zip(*marks, strict=True), marker="_", s=600, color="black", label="paper (Table 2)")
    if measured:
        marks = [(i, measured[n] / MB) for i, n in enumerate(names) if n in measured]
        if marks:
            ax.scatter(*zip(*marks, strict=True), marker="o", color="#c44e52", label="measured peak")
    labels = [METHODS[n].paper_name if n in METHODS else n for n in names]
    ax.set_xticks(x, labels, rotation=20)
    ax.set_ylabel("training memory (MB)")
    ax.legend(fontsize="small")
    return ax
