"""Keras 3 -> tf_keras (Keras 2) bridge: the same architecture and weights, layer by layer.

tensorflow-model-optimization 0.8 (quantisation-aware training) only understands tf_keras models.
:func:`to_tf_keras` rebuilds a Keras 3 Functional or Sequential model in tf_keras from each layer's
constructor arguments (not from serialised configs, whose formats differ between the two), then copies
the weights. Nested models are inlined; ``SeparableConv2D`` becomes ``DepthwiseConv2D`` + 1x1 ``Conv2D``
(named ``<name>_depthwise`` / ``<name>_pointwise``), which is how TFLite runs it anyway. Layers outside
:data:`SUPPORTED_LAYERS` are reported together in one :class:`UnsupportedLayerError`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinyml_kit.export._graph import model_inputs, run_graph
from tinyml_kit.export.errors import ExportError, UnsupportedLayerError


@dataclass(frozen=True)
class LayerMapping:
    """How to rebuild one Keras 3 layer class in tf_keras: same class name, these constructor args."""

    keys: tuple[str, ...] = ()  # constructor arguments copied from the Keras 3 config
    renames: dict[str, str] = field(default_factory=dict)  # Keras 3 name -> tf_keras name


_CONV = ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation", "use_bias")
_POOL = ("pool_size", "strides", "padding", "data_format")
_GLOBAL_POOL = ("data_format", "keepdims")

# Keras 3 class name (in keras.layers) -> mapping. Everything here is a Keras built-in with the same
# class name in tf_keras.layers.
SUPPORTED_LAYERS: dict[str, LayerMapping] = {
    "Conv2D": LayerMapping(("filters", "groups", *_CONV)),
    "DepthwiseConv2D": LayerMapping(("depth_multiplier", *_CONV)),
    "SeparableConv2D": LayerMapping(("filters", "depth_multiplier", *_CONV)),
    "Dense": LayerMapping(("units", "activation", "use_bias")),
    "BatchNormalization": LayerMapping(("axis", "momentum", "epsilon", "center", "scale")),
    "ReLU": LayerMapping(("max_value", "negative_slope", "threshold")),
    "LeakyReLU": LayerMapping(("negative_slope",), {"negative_slope": "alpha"}),
    "Activation": LayerMapping(("activation",)),
    "Softmax": LayerMapping(("axis",)),
    "Add": LayerMapping(),
    "Subtract": LayerMapping(),
    "Multiply": LayerMapping(),
    "Average": LayerMapping(),
    "Maximum": LayerMapping(),
    "Concatenate": LayerMapping(("axis",)),
    "MaxPooling2D": LayerMapping(_POOL),
    "AveragePooling2D": LayerMapping(_POOL),
    "GlobalAveragePooling2D": LayerMapping(_GLOBAL_POOL),
    "GlobalMaxPooling2D": LayerMapping(_GLOBAL_POOL),
    "Flatten": LayerMapping(("data_format",)),
    "Reshape": LayerMapping(("target_shape",)),
    "Dropout": LayerMapping(("rate", "noise_shape", "seed")),
    "ZeroPadding2D": LayerMapping(("padding", "data_format")),
    "Cropping2D": LayerMapping(("cropping", "data_format")),
    "UpSampling2D": LayerMapping(("size", "data_format", "interpolation")),
    "Rescaling": LayerMapping(("scale", "offset")),
}

_REGULARIZER_ATTRS = ("kernel_regularizer", "bias_regularizer", "depthwise_regularizer",
                      "pointwise_regularizer", "activity_regularizer")
_CONSTRAINT_ATTRS = ("kernel_constraint", "bias_constraint", "depthwise_constraint", "pointwise_constraint")

# wrap(keras3_layer, tf_keras_layer) -> the callable placed in the graph (e.g. a QAT annotation wrapper)
WrapFn = Callable[[Any, Any], Any]


def supported_layers_text() -> str:
    return ", ".join(sorted(SUPPORTED_LAYERS)) + ", InputLayer, nested Functional/Sequential models"


def to_tf_keras(model: Any, wrap: WrapFn | None = None) -> Any:
    """Rebuild a Keras 3 model in tf_keras with identical weights (float outputs agree to ~1e-6).

    Args:
        model: a built Keras 3 Functional or Sequential model.
        wrap: optional hook receiving each (Keras 3 layer, new tf_keras layer); what it returns is
            called in the graph instead of the tf_keras layer (used to annotate layers for QAT).

    Returns:
        A ``tf_keras.Model`` with the same inputs, outputs, layer names and weights (separable
        convolutions split in two, see the module docstring).
    """
    _reject_unsupported(model)
    tfk = tf_keras_module()
    builder = _Builder(tfk, wrap)
    inputs = [_tf_keras_input(tfk, t, i) for i, t in enumerate(model_inputs(model))]
    outputs = run_graph(model, inputs, builder.call)
    rebuilt = tfk.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                        name=model.name)
    builder.copy_weights()
    return rebuilt


def keras3_class_name(layer: Any) -> str | None:
    """The Keras 3 built-in class name of ``layer`` if it is exactly that built-in (not a subclass)."""
    import keras

    name = type(layer).__name__
    builtin = getattr(keras.layers, name, None)
    return name if builtin is not None and type(layer) is builtin else None


def _reject_unsupported(model: Any) -> None:
    bad: list[str] = []

    def check(layer: Any, args: tuple, kwargs: dict, recorded: list) -> list:
        name = keras3_class_name(layer)
        if name not in SUPPORTED_LAYERS:
            label = f"'{layer.name}' ({type(layer).__module__}.{type(layer).__name__})"
            if label not in bad:
                bad.append(label)
        return recorded

    run_graph(model, model_inputs(model), check)
    if bad:
        raise UnsupportedLayerError(
            f"the Keras 3 -> tf_keras bridge (needed for quantisation-aware training) cannot map "
            f"{len(bad)} layer(s): {', '.join(bad)}. Supported: {supported_layers_text()}. Replace these "
            "layers, or skip QAT and use post-training quantisation (tinyml_kit.export.to_tflite)."
        )


@dataclass
class _Rebuilt:
    """The tf_keras layer(s) standing for one Keras 3 layer, and which source weights each one takes."""

    source: Any
    parts: list[tuple[Any, list[int]]]  # (tf_keras layer, indices into source.get_weights())
    call: Callable[..., Any]


class _Builder:
    """Creates the tf_keras layers for each Keras 3 layer (shared layers stay shared), copies weights."""

    def __init__(self, tfk: Any, wrap: WrapFn | None):
        self.tfk = tfk
        self.wrap = wrap
        self.created: dict[int, _Rebuilt] = {}
        self.names: set[str] = set()

    def call(self, layer: Any, args: tuple, kwargs: dict, recorded: list) -> Any:
        if id(layer) not in self.created:
            self.created[id(layer)] = self._rebuild(layer)
        kwargs = {k: v for k, v in kwargs.items() if k in ("training", "mask")}
        return self.created[id(layer)].call(*args, **kwargs)

    def _rebuild(self, layer: Any) -> _Rebuilt:
        class_name = keras3_class_name(layer)
        mapping = SUPPORTED_LAYERS[class_name]
        config = layer.get_config()
        kwargs = {mapping.renames.get(k, k): _plain(config[k]) for k in mapping.keys if k in config}
        if "activation" in kwargs and not isinstance(kwargs["activation"], str):
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({class_name}) uses a custom activation {kwargs['activation']!r}; "
                "the bridge maps built-in activations only (relu, relu6, sigmoid, softmax, swish, ...)."
            )
        kwargs.update(self._regularizers(layer))
        kwargs["trainable"] = layer.trainable
        if class_name == "SeparableConv2D":
            return self._separable(layer, kwargs)
        new = self._make(layer, class_name, kwargs, self._unique(layer.name))
        wrapped = self.wrap(layer, new) if self.wrap else new
        return _Rebuilt(layer, [(new, list(range(len(layer.weights))))], wrapped)

    def _separable(self, layer: Any, kwargs: dict[str, Any]) -> _Rebuilt:
        """SeparableConv2D as DepthwiseConv2D + 1x1 Conv2D, as TFLite runs it.

        tfmot would split it itself, but names its new layers automatically ("conv2d"...), which
        clashes with the model's own layer names when it copies weights.
        """
        common = {k: kwargs[k] for k in ("data_format", "trainable") if k in kwargs}
        depthwise = self._make(layer, "DepthwiseConv2D", {
            **common, "kernel_size": kwargs["kernel_size"], "strides": kwargs["strides"],
            "padding": kwargs["padding"], "depth_multiplier": kwargs["depth_multiplier"],
            "dilation_rate": kwargs["dilation_rate"], "use_bias": False,
            "depthwise_regularizer": kwargs.get("depthwise_regularizer")},
            self._unique(f"{layer.name}_depthwise"))
        pointwise = self._make(layer, "Conv2D", {
            **common, "filters": kwargs["filters"], "kernel_size": 1, "activation": kwargs["activation"],
            "use_bias": kwargs["use_bias"], "kernel_regularizer": kwargs.get("pointwise_regularizer"),
            "bias_regularizer": kwargs.get("bias_regularizer")}, self._unique(f"{layer.name}_pointwise"))
        first = self.wrap(layer, depthwise) if self.wrap else depthwise
        second = self.wrap(layer, pointwise) if self.wrap else pointwise

        def call(x: Any, **call_kwargs: Any) -> Any:
            return second(first(x, **call_kwargs), **call_kwargs)

        bias = [2] if kwargs["use_bias"] else []
        return _Rebuilt(layer, [(depthwise, [0]), (pointwise, [1, *bias])], call)

    def _make(self, layer: Any, class_name: str, kwargs: dict[str, Any], name: str) -> Any:
        try:
            return getattr(self.tfk.layers, class_name)(name=name, **kwargs)
        except (TypeError, ValueError) as exc:
            raise ExportError(
                f"cannot rebuild layer '{layer.name}' ({type(layer).__name__}) in tf_keras: {exc}"
            ) from exc

    def _regularizers(self, layer: Any) -> dict[str, Any]:
        out = {}
        for attr in _REGULARIZER_ATTRS:
            reg = getattr(layer, attr, None)
            if reg is None:
                continue
            config = reg.get_config() if hasattr(reg, "get_config") else {}
            if type(reg).__name__ in ("L1", "L2", "L1L2") and set(config) <= {"l1", "l2"}:
                out[attr] = self.tfk.regularizers.L1L2(l1=config.get("l1", 0.0), l2=config.get("l2", 0.0))
            else:
                warnings.warn(f"layer '{layer.name}': {attr} {type(reg).__name__} is not carried into the "
                              "tf_keras model (only L1/L2 are).", stacklevel=4)
        for attr in _CONSTRAINT_ATTRS:
            if getattr(layer, attr, None) is not None:
                warnings.warn(f"layer '{layer.name}': {attr} is not carried into the tf_keras model.",
                              stacklevel=4)
        return out

    def _unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{name}_{n}"
        self.names.add(candidate)
        return candidate

    def copy_weights(self) -> None:
        for rebuilt in self.created.values():
            source = rebuilt.source.get_weights()
            for new, indices in rebuilt.parts:
                weights = [source[i] for i in indices]
                shapes = [w.shape for w in weights], [w.shape for w in new.get_weights()]
                if shapes[0] != shapes[1]:
                    raise ExportError(f"layer '{rebuilt.source.name}': Keras 3 weights {shapes[0]} do not "
                                      f"match the rebuilt tf_keras layer's {shapes[1]}.")
                if weights:
                    new.set_weights(weights)


def _tf_keras_input(tfk: Any, tensor: Any, index: int) -> Any:
    shape = tuple(tensor.shape[1:])
    history = getattr(tensor, "_keras_history", None)
    name = history.operation.name if history and history.operation is not None else f"input_{index}"
    return tfk.Input(shape=shape, dtype=str(tensor.dtype), name=name)


def _plain(value: Any) -> Any:
    """Config values as plain Python (lists -> tuples, as tf_keras constructors expect)."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


@functools.cache
def tf_keras_module() -> Any:
    """The tf_keras package, or a MissingDependencyError saying how to install it."""
    try:
        import tf_keras
    except ImportError as exc:
        from tinyml_kit.errors import MissingDependencyError

        raise MissingDependencyError(
            "tf_keras is not installed (`pip install 'tf-keras==2.20.*'`); quantisation-aware training "
            "needs it. See `tinyml-kit doctor`."
        ) from exc
    return tf_keras
