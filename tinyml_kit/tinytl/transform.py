"""``prepare``: turn a pretrained Keras CNN into a TinyTL transfer-learning model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import tree

from tinyml_kit.tinytl.errors import TinyTLError, UnsupportedArchitectureError
from tinyml_kit.tinytl.folding import Fold, plan_folds
from tinyml_kit.tinytl.graph import GraphView, InvertedResidualBlock, describe, find_inverted_residual_blocks
from tinyml_kit.tinytl.lean_layers import (
    FrozenBatchNormalization,
    LeanConv2D,
    LeanDense,
    LeanDepthwiseConv2D,
    LeanReLU,
)
from tinyml_kit.tinytl.lite_residual import NORMS, LiteResidual
from tinyml_kit.tinytl.methods import Method, get_method

KERNEL_VARIABLES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")
SCALE_VARIABLES = ("gamma",)
BIAS_VARIABLES = ("bias", "beta")
STATISTICS = ("moving_mean", "moving_variance")
HEAD_NAMES = ("tinytl_pool", "tinytl_dropout", "classifier")
_RELU_ACTIVATIONS = {"relu": None, "relu6": 6.0}


@dataclass(frozen=True)
class LiteResidualOptions:
    """How ``prepare`` builds lite residual branches (defaults: the official TinyTL settings)."""

    kernel_size: int = 5
    groups: int = 2
    expand: float = 1.0
    downsample: int | None = 2
    norm: str = "group"
    padding: str = "same"
    first_block: bool = False  # the official code skips the network's first block
    upsample: str = "bilinear"

    def layer(self, block: InvertedResidualBlock, name: str, epsilon: float = 1e-3) -> LiteResidual:
        return LiteResidual(
            kernel_size=self.kernel_size, groups=self.groups, expand=self.expand,
            downsample=self.downsample, strides=block.stride, norm=self.norm, padding=self.padding,
            epsilon=epsilon, upsample=self.upsample, name=name,
        )  # fmt: skip


def prepare(
    model: keras.Model,
    method: str,
    num_classes: int | None = None,
    *,
    norm: str = "group",
    kernel_size: int = 5,
    groups: int = 2,
    expand: float = 1.0,
    downsample: int | None = 2,
    padding: str = "same",
    upsample: str = "bilinear",
    first_block: bool = False,
    lite_residual: bool | None = None,
    fold_norms: bool = True,
    dropout: float = 0.2,
    classifier_activation: str | None = "softmax",
    memory_lean: bool = True,
    name: str | None = None,
) -> keras.Model:
    """A new Keras model set up for TinyTL transfer learning with ``method``; ``model`` is untouched.

    The graph of a functional (or built Sequential) CNN is rebuilt layer by layer with the
    original weights copied:

    * the head (Dense / Dropout / pooling after the last feature map) is replaced by
      global average pooling, ``Dropout(dropout)`` and a new ``Dense(num_classes)`` named
      ``classifier``;
    * for ``lite_residual`` methods, a :class:`~tinyml_kit.tinytl.LiteResidual` branch is added to
      the main branch of every inverted-residual block (recognised by structure: MobileNetV2,
      ProxylessNAS, EfficientNet-Lite, MCUNet/TinyNAS MBConv), except the first unless
      ``first_block``;
    * every ``BatchNormalization`` becomes :class:`~tinyml_kit.tinytl.FrozenBatchNormalization`
      (moving statistics kept, never updated) in every method, ``full`` included;
    * with ``memory_lean``, frozen conv / depthwise / dense layers and ReLUs become their lean
      variants, whose backward pass keeps no activation TinyTL does not need, and frozen batch
      norms are folded into the convolutions before them (``fold_norms``);
    * trainable variables are set per method (see ``tinytl.METHODS``): ``last`` the classifier;
      ``norm+last`` also every gamma/beta; ``bias`` every bias and beta; ``lite_residual`` the
      branches; ``lite_residual+bias`` both (the branches' last beta stays frozen, as in the
      official code, since the block's own beta already provides that offset); ``full``
      everything.

    Args:
        model: the pretrained backbone, with or without its classifier.
        method: one of ``last``, ``norm+last``, ``bias``, ``lite_residual``, ``lite_residual+bias``,
            ``full``.
        num_classes: outputs of the new classifier; default: those of ``model``'s own classifier.
        norm: normalisation inside lite residual branches: ``"group"`` (paper) or ``"batch"``
            (folds into convolutions for int8 deployment).
        kernel_size, groups, expand, downsample, padding, upsample: lite residual settings
            (see :class:`~tinyml_kit.tinytl.LiteResidual`).
        first_block: also attach a branch to the first block.
        lite_residual: attach branches (``None``: only for the ``lite_residual`` methods). ``True``
            with another method attaches them frozen (their biases / scales train as the method
            says), as in the official code, whose every network carries ImageNet-pretrained
            branches; the Table 2 memory column counts them.
        fold_norms: with ``memory_lean``, fold each frozen batch norm (gamma frozen: every method
            but ``norm+last`` and ``full``) into the convolution before it, and fuse a following
            ReLU / ReLU6 into that convolution (see :mod:`tinyml_kit.tinytl.folding`); beta then
            lives on as the convolution's bias. Same function, fewer buffers.
        dropout: dropout rate before the classifier (official 0.2).
        classifier_activation: activation of the classifier (``None`` for logits).
        memory_lean: use the lean layers (TensorFlow backend); ``False`` gives plain Keras
            layers, for comparison.
        name: the new model's name (default ``"<model>_tinytl_<method>"``).

    Raises:
        UnknownMethodError: ``method`` is not a TinyTL method.
        UnsupportedArchitectureError: a layer cannot be transformed (the message names it).
    """
    spec = get_method(method)
    if norm not in NORMS:
        raise TinyTLError(f"unknown lite residual norm {norm!r}; valid: {', '.join(NORMS)}")
    if not 0.0 <= dropout < 1.0:
        raise TinyTLError(f"dropout must be in [0, 1); received dropout={dropout}")
    options = LiteResidualOptions(
        kernel_size, groups, expand, downsample, norm, padding, first_block, upsample
    )
    view = GraphView(model)
    for call in view.calls:
        if isinstance(call.layer, LiteResidual):
            raise TinyTLError(
                f"model '{model.name}' already has lite residual branches (layer '{call.layer.name}'); "
                "call prepare() on the original backbone"
            )
    features = view.feature_tensor()
    num_classes = num_classes if num_classes is not None else view.head_classes()
    if num_classes is None or num_classes < 1:
        raise TinyTLError(
            f"model '{model.name}' has no classifier to take the class count from; pass num_classes=N"
        )
    trunk = view.ancestors(features)
    _check_layers(trunk)
    attach = spec.lite_residual if lite_residual is None else bool(lite_residual)
    blocks = find_inverted_residual_blocks(view, trunk) if attach else []
    if blocks and not options.first_block:
        blocks = blocks[1:]
    folds = {}
    if memory_lean and fold_norms and not spec.kernels and not spec.norm_scales:
        keep = {block.main_output for block in blocks}
        folds = plan_folds(view, trunk, fuse_relu=spec.name != "last", keep=keep)
    inputs, x, pairs, lite = _rebuild(view, trunk, features, blocks, folds, spec, options, memory_lean)
    taken = {layer.name for layer, _ in pairs} | {layer.name for layer in lite}
    pool_name, drop_name, head_name = (_unique(n, taken) for n in HEAD_NAMES)
    x = keras.layers.GlobalAveragePooling2D(name=pool_name)(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=drop_name)(x)
    outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name=head_name)(x)
    inputs = inputs[0] if len(inputs) == 1 else inputs
    new_model = keras.Model(
        inputs, outputs, name=name or f"{model.name}_tinytl_{spec.name}".replace("+", "_")
    )
    for new_layer, weights in pairs:
        new_layer.set_weights(weights())
    apply_method(new_model, spec, head=(head_name,))
    return new_model


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate)
    return candidate


def _check_layers(calls: list) -> None:
    """Refuse layers with a trainable variable that has no TinyTL role (message names both).

    Non-trainable state (batch-norm statistics, ``Normalization`` mean and variance...) never trains.
    """
    for call in calls:
        for variable in call.layer.weights:
            variable_role(call.layer, variable)


def _short_name(variable: Any) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def relu_max_value(layer: keras.layers.Layer) -> tuple[bool, float | None]:
    """(is a plain ReLU / ReLU6, its max value)."""
    if isinstance(layer, keras.layers.ReLU):
        plain = layer.negative_slope == 0 and layer.threshold == 0
        return plain, None if layer.max_value is None else float(layer.max_value)
    if type(layer) is keras.layers.Activation:
        name = keras.activations.serialize(layer.activation)
        name = name if isinstance(name, str) else name.get("config", {}).get("name", "")
        if name in _RELU_ACTIVATIONS:
            return True, _RELU_ACTIVATIONS[name]
    return False, None


def replacement_layer(layer: keras.layers.Layer, spec: Method, memory_lean: bool) -> keras.layers.Layer:
    """A fresh layer (same config and name) to stand for ``layer`` in the TinyTL model.

    Weighted conv / dense / batch-norm layers become the ``tinyml_kit`` subclasses (which also keep
    per-variable trainability in their config), with the lean path on when ``memory_lean``.
    """
    config = layer.get_config()
    kind = type(layer)
    for plain, ours in (
        (keras.layers.BatchNormalization, FrozenBatchNormalization),
        (keras.layers.Conv2D, LeanConv2D),
        (keras.layers.DepthwiseConv2D, LeanDepthwiseConv2D),
        (keras.layers.Dense, LeanDense),
    ):
        if kind in (plain, ours):
            return ours.from_config({**config, "lean": memory_lean})
    is_relu, max_value = relu_max_value(layer)
    if is_relu and kind in (keras.layers.ReLU, LeanReLU, keras.layers.Activation):
        lean_relu = memory_lean and spec.name not in ("last", "full")
        relu = LeanReLU if lean_relu else keras.layers.ReLU
        return relu(max_value=max_value, name=layer.name, dtype=layer.dtype_policy)
    return kind.from_config(config)


def _rebuild(
    view: GraphView,
    trunk: list,
    features: int,
    blocks: list[InvertedResidualBlock],
    folds: dict[int, Fold],
    spec: Method,
    options: LiteResidualOptions,
    memory_lean: bool,
) -> tuple[list, Any, list, list]:
    """Re-run the trunk's calls on new layers; add lite residuals after each block's main branch.

    Returns the new inputs, the new feature tensor, ``(new layer, weights function)`` pairs and the
    lite residual layers. Calls absorbed by a fold pass their input through.
    """
    inputs = []
    new: dict[int, Any] = {}
    for key in view.inputs:
        old = view.tensor(key)
        tensor = keras.Input(batch_shape=old.shape, dtype=old.dtype, name=getattr(old, "name", None))
        inputs.append(tensor)
        new[key] = tensor
    attach = {block.main_output: block for block in blocks}
    absorbed = {c.index for fold in folds.values() for c in fold.skipped}
    replaced: dict[int, keras.layers.Layer] = {}
    pairs, lite = [], []
    for call in trunk:
        if call.index in absorbed:
            outputs = new[call.inputs[0]]
        else:
            layer = replaced.get(id(call.layer))
            if layer is None:
                fold = folds.get(call.index)
                layer = fold.layer() if fold else replacement_layer(call.layer, spec, memory_lean)
                replaced[id(call.layer)] = layer
                pairs.append((layer, fold.weights if fold else call.layer.get_weights))
            filled = {id(t): new[view.canon(t)] for t in call.node.input_tensors}
            args, kwargs = call.node.arguments.fill_in(filled)
            kwargs.pop("training", None)  # let fit()/predict() decide
            outputs = layer(*args, **kwargs)
        for key, tensor in zip(call.outputs, tree.flatten(outputs), strict=True):
            new[key] = tensor
            block = attach.get(key)
            if block is not None:
                epsilon = float(getattr(call.layer, "epsilon", 1e-3))
                branch = options.layer(block, f"{block.depthwise}_lite_residual", epsilon)
                new[key] = branch([new[block.input], tensor])
                lite.append(branch)
    return inputs, new[features], pairs, lite


def variable_role(layer: keras.layers.Layer, variable: Any) -> str:
    """``"kernel"``, ``"scale"``, ``"bias"`` or ``"statistic"`` (never trains) for a backbone variable."""
    short = _short_name(variable)
    if short in KERNEL_VARIABLES:
        return "kernel"
    if short in SCALE_VARIABLES:
        return "scale"
    if short in BIAS_VARIABLES:
        return "bias"
    if short in STATISTICS or not (layer.trainable and variable.trainable):
        return "statistic"
    raise UnsupportedArchitectureError(
        f"layer {describe(layer)} has a trainable variable '{short}' that TinyTL cannot classify "
        f"(known: kernels {KERNEL_VARIABLES}, scales {SCALE_VARIABLES}, biases {BIAS_VARIABLES}); "
        "remove the layer, or freeze it (layer.trainable = False) to keep it frozen in every method"
    )


def apply_method(model: keras.Model, method: str | Method, head: tuple[str, ...] = ("classifier",)) -> None:
    """Set which variables of a TinyTL model train under ``method`` (in place).

    Layers named in ``head`` train fully. Backbone variables train by role (kernel, norm scale,
    bias). Lite residual branches train fully in the ``lite_residual`` methods (their last beta
    stays frozen when biases also train, as in the official code) and by role otherwise.
    """
    spec = get_method(method) if isinstance(method, str) else method
    by_role = {"kernel": spec.kernels, "scale": spec.norm_scales, "bias": spec.biases, "statistic": False}
    everything = dict.fromkeys(by_role, True) | {"statistic": False}
    for layer in model.layers:
        if layer.name in head:
            layer.trainable = True
        elif isinstance(layer, LiteResidual):
            flags = everything if spec.lite_residual else by_role
            frozen = [
                layer.weight_key(sub, v)
                for sub in layer.sublayers
                for v in sub._trainable_variables
                if not flags[variable_role(sub, v)]
            ]
            if spec.lite_residual and spec.biases and layer.norm2.center:
                frozen.append(layer.weight_key(layer.norm2, layer.norm2.beta))
            layer.trainable = True
            layer.set_frozen_weights(frozen)
            if not layer.trainable_weights:
                layer.trainable = False
        elif layer.weights:
            _set_trainable(layer, by_role)


def _set_trainable(layer: keras.layers.Layer, flags: dict[str, bool]) -> None:
    wanted = [(v, flags[variable_role(layer, v)]) for v in layer.weights]
    layer.trainable = any(flag for _, flag in wanted)
    own = {id(v) for v in layer._trainable_variables}  # (KerasVariable == is elementwise)
    frozen = [_short_name(v) for v, flag in wanted if not flag and id(v) in own]
    if hasattr(layer, "set_frozen_weights"):
        layer.set_frozen_weights(frozen)
        return
    for variable, flag in wanted:
        if variable.trainable != flag and id(variable) in own:
            variable.trainable = flag
