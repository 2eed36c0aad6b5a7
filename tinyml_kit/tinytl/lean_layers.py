"""Keras layers whose training-time backward pass keeps only what TinyTL says it needs.

Each class subclasses the Keras layer it replaces (same weights, same forward values, the parent's
config plus ``lean`` and ``frozen_weights``), so ``isinstance(layer, keras.layers.Conv2D)`` still
holds and saved models load anywhere ``tinyml_kit.tinytl`` is imported. They differ only when called
with ``training=True`` on the TensorFlow backend:

* :class:`LeanConv2D`, :class:`LeanDepthwiseConv2D`, :class:`LeanDense`: with a frozen kernel the
  layer input is not kept for backward (:mod:`tinyml_kit.tinytl.lean_ops`); a ``relu`` /
  ``relu6`` activation is fused and keeps a 1-bit mask.
* :class:`FrozenBatchNormalization`: always normalises with the moving statistics (never updates
  them), so it is the affine map ``x * scale + shift``; with a frozen gamma its input is not kept.
* :class:`LeanReLU`: ReLU / ReLU6 keeping a 1-bit mask instead of a float32 tensor.

At inference (``training`` false or absent) they run the parent's code unchanged, so conversion to
TFLite sees plain Keras ops.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def _tf_backend() -> bool:
    return keras.backend.backend() == "tensorflow"


def is_frozen(layer: keras.layers.Layer, variable: Any) -> bool:
    """Whether ``variable`` of ``layer`` receives no gradient (layer or variable not trainable)."""
    return variable is None or not (layer.trainable and variable.trainable)


def _plain_float(layer: keras.layers.Layer) -> bool:
    """True when the layer has no LoRA / quantisation machinery the lean path would bypass."""
    return not getattr(layer, "lora_enabled", False) and getattr(layer, "quantization_mode", None) is None


def _values(layer: keras.layers.Layer, kernel: Any) -> tuple[Any, Any]:
    kernel = ops.cast(kernel, layer.compute_dtype)
    bias = ops.cast(layer.bias, layer.compute_dtype) if layer.use_bias else None
    return kernel, bias


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The registered name of a layer's ``activation`` (``None`` for linear / absent)."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = keras.activations.serialize(activation)
    name = name if isinstance(name, str) else name.get("config", {}).get("name", "")
    return None if name == "linear" else name


def _lean_call(layer: keras.layers.Layer, op: Any, inputs: Any, kernel: Any, **kwargs: Any) -> Any:
    """Run a lean op with the layer's weights, fusing a ReLU / ReLU6 activation into it."""
    from tinyml_kit.tinytl.lean_ops import ACTIVATIONS

    kernel, bias = _values(layer, kernel)
    name = activation_name(layer)
    fused = name if name in ACTIVATIONS else None
    outputs = op(inputs, kernel, bias, activation=fused, **kwargs)
    return outputs if fused or name is None else layer.activation(outputs)


def short_name(variable: Any) -> str:
    """A variable's name without its layer path (``"kernel"``, ``"beta"``...)."""
    return variable.name.split("/")[-1].split(":")[0]


class FrozenWeightsMixin:
    """Keeps per-variable ``trainable`` flags in the layer config.

    Keras saves only the layer's ``trainable`` flag, so a layer whose kernel is frozen while its
    bias trains would come back from ``load_model`` with both trainable. ``frozen_weights`` lists
    the variables that stay frozen while the layer trains; ``build`` re-applies it.

    Args:
        lean: use the memory-lean training path where it applies (default true).
        frozen_weights: short names of variables that do not train (e.g. ``["kernel"]``).
    """

    def __init__(self, *args: Any, lean: bool = True, frozen_weights: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the Keras layer this mixin precedes
        self.lean = bool(lean)
        self.frozen_weights = tuple(frozen_weights or ())

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        keras.layers.Layer.trainable.fset(self, value)  # resets every variable's flag
        if hasattr(self, "frozen_weights"):
            self._apply_frozen_weights()

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self._apply_frozen_weights()

    def set_frozen_weights(self, names: Any) -> None:
        """Freeze exactly the variables called ``names`` (others follow ``layer.trainable``)."""
        self.frozen_weights = tuple(sorted(names))
        self._apply_frozen_weights()

    def _apply_frozen_weights(self) -> None:
        for variable in getattr(self, "_trainable_variables", []):
            variable.trainable = self.trainable and short_name(variable) not in self.frozen_weights

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lean": self.lean, "frozen_weights": list(self.frozen_weights)}


@keras.saving.register_keras_serializable(package="tinyml_kit")
class LeanConv2D(FrozenWeightsMixin, keras.layers.Conv2D):
    """``Conv2D`` that does not keep its input for backward while its kernel is frozen.

    Same arguments as ``keras.layers.Conv2D`` plus those of :class:`FrozenWeightsMixin`. The lean
    path applies to ``channels_last``, ``groups=1`` convolutions on the TensorFlow backend during
    training; otherwise this is ``Conv2D``.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not (training and self.lean and _tf_backend() and self._lean_applies()):
            return super().call(inputs)
        from tinyml_kit.tinytl.lean_ops import frozen_conv2d

        return _lean_call(self, frozen_conv2d, inputs, self.kernel, strides=self.strides,
                          padding=self.padding, dilations=self.dilation_rate)  # fmt: skip

    def _lean_applies(self) -> bool:
        return (
            is_frozen(self, self._kernel)
            and self.data_format == "channels_last"
            and self.groups == 1
            and _plain_float(self)
        )


@keras.saving.register_keras_serializable(package="tinyml_kit")
class LeanDepthwiseConv2D(FrozenWeightsMixin, keras.layers.DepthwiseConv2D):
    """``DepthwiseConv2D`` that does not keep its input for backward while its kernel is frozen.

    The lean path needs ``channels_last``, equal strides and no dilation (TensorFlow backend,
    training); otherwise this is ``DepthwiseConv2D``.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not (training and self.lean and _tf_backend() and self._lean_applies()):
            return super().call(inputs)
        from tinyml_kit.tinytl.lean_ops import frozen_depthwise_conv2d

        return _lean_call(self, frozen_depthwise_conv2d, inputs, self.kernel, strides=self.strides,
                          padding=self.padding)  # fmt: skip

    def _lean_applies(self) -> bool:
        return (
            is_frozen(self, self.kernel)
            and self.data_format == "channels_last"
            and self.strides[0] == self.strides[1]
            and tuple(self.dilation_rate) == (1, 1)
        )


@keras.saving.register_keras_serializable(package="tinyml_kit")
class LeanDense(FrozenWeightsMixin, keras.layers.Dense):
    """``Dense`` that does not keep its (2-D) input for backward while its kernel is frozen."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        lean = training and self.lean and _tf_backend() and len(inputs.shape) == 2
        if not (lean and self._lean_applies()):
            return super().call(inputs)
        from tinyml_kit.tinytl.lean_ops import frozen_matmul

        return _lean_call(self, frozen_matmul, inputs, self.kernel)

    def _lean_applies(self) -> bool:
        return is_frozen(self, self._kernel) and _plain_float(self)


@keras.saving.register_keras_serializable(package="tinyml_kit")
class FrozenBatchNormalization(FrozenWeightsMixin, keras.layers.BatchNormalization):
    """``BatchNormalization`` that always uses its moving statistics and never updates them.

    It is the per-channel affine map ``x * scale + shift`` with ``scale = gamma / sqrt(var + eps)``
    and ``shift = beta - mean * scale``, in training as at inference: the statistics a backbone
    learnt on ImageNet are kept, as the Keras transfer-learning guide recommends and as TinyTL's
    cost model assumes (frozen normalisation layers are affine). ``gamma`` and ``beta`` train as
    their variables' ``trainable`` flags say; with a frozen ``gamma`` the backward pass does not
    keep the input (TensorFlow backend), only ``scale``.

    Args:
        lean: use the memory-lean gradient when ``gamma`` is frozen (default true).
        frozen_weights: see :class:`FrozenWeightsMixin` (e.g. ``["gamma"]``).
        **kwargs: the arguments of ``keras.layers.BatchNormalization``.
    """


    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        lean = training and self.lean and _tf_backend() and is_frozen(self, self.gamma)
        if not lean or self.axis != len(inputs.shape) - 1:
            return super().call(inputs, training=False, mask=mask)
        from tinyml_kit.tinytl.lean_ops import frozen_affine

        dtype = self.compute_dtype
        scale = ops.rsqrt(ops.cast(self.moving_variance, dtype) + self.epsilon)
        if self.scale:
            scale = scale * ops.cast(self.gamma, dtype)
        shift = -ops.cast(self.moving_mean, dtype) * scale
        if self.center:
            shift = ops.cast(self.beta, dtype) + shift
        return frozen_affine(inputs, ops.stop_gradient(scale), shift)


@keras.saving.register_keras_serializable(package="tinyml_kit")
class LeanReLU(keras.layers.ReLU):
    """``ReLU`` / ReLU6 that keeps a packed 1-bit mask for backward (TensorFlow backend, training).

    Applies to ``negative_slope=0`` and ``threshold=0`` (any ``max_value``); otherwise this is
    ``keras.layers.ReLU``.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not (training and _tf_backend() and self.negative_slope == 0 and self.threshold == 0):
            return super().call(inputs)
        from tinyml_kit.tinytl.lean_ops import masked_relu

        max_value = None if self.max_value is None else float(self.max_value)
        return masked_relu(inputs, max_value)


LEAN_LAYERS = (LeanConv2D, LeanDepthwiseConv2D, LeanDense, FrozenBatchNormalization, LeanReLU)
