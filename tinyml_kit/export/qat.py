"""Quantisation-aware training (QAT) for Keras 3 models, through tensorflow-model-optimization.

tfmot 0.8 works on tf_keras (Keras 2) only. :func:`quantize_aware` rebuilds the Keras 3 model in
tf_keras (:mod:`tinyml_kit.export.bridge`), inserts tfmot's fake-quantisation (default 8-bit scheme,
per-channel weights, as TFLite's int8 kernels expect) and returns a :class:`QATModel`: train it with
``fit`` on the same numpy arrays or tf.data pipelines as the Keras 3 model, then call ``to_tflite``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tinyml_kit.export.bridge import keras3_class_name, tf_keras_module, to_tf_keras
from tinyml_kit.export.errors import ExportError, UnsupportedLayerError
from tinyml_kit.export.representative import collect_samples

# Layers tfmot's default 8-bit registry has no rule for, but which TFLite runs in int8 with their own
# output scale (MUL, SUB, MAXIMUM...): they get fake quantisation on their output only.
OUTPUT_ONLY_LAYERS = frozenset({"Rescaling", "Multiply", "Subtract", "Average", "Maximum"})


def quantize_aware(model: Any, *, optimizer: Any = None, loss: Any = None, metrics: Any = None) -> QATModel:
    """Make a QAT copy of a Keras 3 model: same weights, fake-quantised like the int8 model will be.

    Args:
        model: a built Keras 3 Functional or Sequential model (see
            :data:`~tinyml_kit.export.SUPPORTED_LAYERS`); it is not modified.
        optimizer, loss, metrics: compile settings (Keras 3 objects or strings). By default the
            model's own compile settings are reused when it was compiled.

    Returns:
        A :class:`QATModel`, compiled when settings were given or found.

    Example:
        >>> qat = quantize_aware(model)                                  # doctest: +SKIP
        >>> qat.fit(x_train, y_train, epochs=1, batch_size=64)           # doctest: +SKIP
        >>> qat.to_tflite(x_train[:256], path="model_qat_int8.tflite")   # doctest: +SKIP
    """
    tfmot = _tfmot()
    quantize = tfmot.quantization.keras
    output_only = _output_only_config()

    def annotate(source: Any, layer: Any) -> Any:
        if keras3_class_name(source) in OUTPUT_ONLY_LAYERS:
            return quantize.quantize_annotate_layer(layer, quantize_config=output_only())
        return layer

    float_model = to_tf_keras(model, wrap=annotate)
    try:
        annotated = quantize.quantize_annotate_model(float_model)
        with quantize.quantize_scope({output_only.__name__: output_only}):
            qat_model = quantize.quantize_apply(annotated)
    except (RuntimeError, ValueError) as exc:
        raise UnsupportedLayerError(
            f"tensorflow-model-optimization cannot quantise model '{model.name}': {exc}"
        ) from exc
    qat = QATModel(qat_model, source=model)
    settings = _compile_settings(model, optimizer, loss, metrics)
    if settings:
        qat.compile(**settings)
    return qat


class QATModel:
    """A quantisation-aware copy of a Keras 3 model (a tf_keras model underneath).

    ``fit``, ``evaluate`` and ``predict`` take what Keras 3's take (numpy arrays, tf.data datasets);
    other attributes (``summary``, ``count_params``...) come from the tf_keras model, which is
    also available as :attr:`keras_model`. Save the result with :meth:`to_tflite`.

    The fake-quantisation ranges start uninitialised (tfmot learns them from the first training
    batches), so evaluate the QAT model after ``fit``, not before.
    """

    def __init__(self, keras_model: Any, source: Any = None):
        self.keras_model = keras_model
        self.source = source

    def __getattr__(self, name: str) -> Any:
        if name in ("keras_model", "source"):
            raise AttributeError(name)
        return getattr(self.keras_model, name)

    @property
    def name(self) -> str:
        return self.keras_model.name

    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None, **kwargs: Any) -> None:
        """Compile; Keras 3 optimizer/loss/metric objects are translated to their tf_keras twins."""
        tfk = tf_keras_module()
        self.keras_model.compile(
            optimizer=_translate(optimizer, tfk.optimizers, "optimizer"),
            loss=_translate(loss, tfk.losses, "loss"),
            metrics=None if metrics is None else [_translate(m, tfk.metrics, "metric") for m in metrics],
            **kwargs,
        )

    def fit(self, *args: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        """``tf_keras.Model.fit``; Keras 3 callbacks (EarlyStopping, tinyml-kit's...) work as usual."""
        if getattr(self.keras_model, "optimizer", None) is None:
            raise ExportError("compile the QAT model first: qat.compile(optimizer=..., loss=..., "
                              "metrics=[...]).")
        with self._for_callbacks(callbacks):
            return self.keras_model.fit(*args, callbacks=_adapt_callbacks(callbacks), **kwargs)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        return self.keras_model.evaluate(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        return self.keras_model.predict(*args, **kwargs)

    def to_tflite(self, representative_data: Any = None, io: str | None = "int8",
                  path: str | os.PathLike | None = None, *, max_samples: int = 256, verify: bool = True,
                  verify_tflm: bool = False) -> bytes | Path:
        """Convert to a full-integer .tflite (weights/activation ranges come from QAT).

        ``representative_data`` is still needed for ``io="int8"`` (the converter calibrates the
        few tensors tfmot leaves without fake quantisation); ``io="float32"`` works without it.
        """
        import tensorflow as tf

        from tinyml_kit.export.tflite import finish, run_converter

        io = io or "int8"
        shapes = [tuple(t.shape[1:]) for t in self.keras_model.inputs]
        if representative_data is None and io == "int8":
            raise ExportError("QATModel.to_tflite(io='int8') needs representative_data (a few hundred "
                              "training inputs), or use io='float32'.")
        samples = None if representative_data is None else collect_samples(representative_data, shapes,
                                                                             max_samples)
        specs = [tf.TensorSpec((1, *shape), tf.float32) for shape in shapes]
        model = self.keras_model

        @tf.function(input_signature=specs)
        def serve(*inputs: Any) -> Any:
            return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

        converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
        flatbuffer = run_converter(converter, int8=True, io=io, samples=samples,
                                   what=f"QAT model '{model.name}'")
        return finish(flatbuffer, path, verify=verify, verify_tflm=verify_tflm)

    @contextlib.contextmanager
    def _for_callbacks(self, callbacks: Any) -> Iterator[None]:
        """Let tinyml-kit callbacks find this wrapper (for export) while tf_keras drives them."""
        self.keras_model._tinyml_kit_qat = self
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError):
                del self.keras_model._tinyml_kit_qat


_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
          "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
          "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


def _adapt_callbacks(callbacks: Any) -> Any:
    """Wrap Keras 3 callbacks so that tf_keras's fit loop can drive them (it expects tf_keras ones)."""
    if not callbacks:
        return callbacks
    tfk = tf_keras_module()

    class Keras3Callback(tfk.callbacks.Callback):
        """Forwards every hook to a Keras 3 callback; its ``model`` is the tf_keras QAT model."""

        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner
            for hook in _HOOKS:
                setattr(self, hook, getattr(inner, hook))

        def set_model(self, model: Any) -> None:
            super().set_model(model)
            self.inner.set_model(model)

        def set_params(self, params: Any) -> None:
            super().set_params(params)
            self.inner.set_params(params)

    return [cb if isinstance(cb, tfk.callbacks.Callback) else Keras3Callback(cb) for cb in callbacks]


def _compile_settings(model: Any, optimizer: Any, loss: Any, metrics: Any) -> dict[str, Any]:
    if optimizer is not None or loss is not None:
        return {"optimizer": optimizer or "adam", "loss": loss, "metrics": metrics}
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if not config:
        return {}
    return {"optimizer": config.get("optimizer") or "adam", "loss": config.get("loss"),
            "metrics": metrics if metrics is not None else config.get("metrics")}


def _translate(value: Any, namespace: Any, kind: str) -> Any:
    """A Keras 3 optimizer/loss/metric (object, serialised dict or string) as a tf_keras one."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and "class_name" in value:
        class_name, config = value["class_name"], dict(value.get("config") or {})
    elif hasattr(value, "get_config") and type(value).__module__.startswith("keras."):
        class_name, config = type(value).__name__, value.get_config()
    elif callable(value) and getattr(value, "__module__", "").startswith("keras."):
        return value.__name__  # a built-in loss/metric function, e.g. keras.losses.mean_squared_error
    else:
        return value  # already a tf_keras object, or the user's own callable
    cls = getattr(namespace, class_name, None)
    if cls is None:
        raise ExportError(f"the Keras 3 {kind} {class_name} has no tf_keras equivalent; pass a string "
                          f"name or a tf_keras {kind}.")
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in config.items() if k in accepted and v is not None}
    if kind == "optimizer":
        if isinstance(kwargs.get("learning_rate"), dict):
            raise ExportError("learning-rate schedules cannot be carried into the QAT model; compile it "
                              "with a float learning rate: qat.compile(keras.optimizers.Adam(1e-4), ...).")
        kwargs["jit_compile"] = False  # XLA compile time outweighs its gain for small QAT runs
    if kind == "loss":
        kwargs.pop("reduction", None)  # Keras 3 names ("sum_over_batch_size") differ from tf_keras's
    return cls(**kwargs)


@functools.cache
def _output_only_config() -> type:
    """A tfmot QuantizeConfig that quantises a layer's output only (see OUTPUT_ONLY_LAYERS)."""
    import tensorflow as tf

    quantize = _tfmot().quantization.keras
    plain = tf.autograph.experimental.do_not_convert  # nothing to convert; keeps autograph off the source

    class OutputQuantizeConfig(quantize.QuantizeConfig):
        @plain
        def get_weights_and_quantizers(self, layer: Any) -> list:
            return []

        @plain
        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        @plain
        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            return None

        @plain
        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            return None

        @plain
        def get_output_quantizers(self, layer: Any) -> list:
            return [quantize.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                               narrow_range=False)]

        def get_config(self) -> dict:
            return {}

    return OutputQuantizeConfig


@functools.cache
def _tfmot() -> Any:
    """Import tfmot without switching ``tf.keras`` to Keras 2 for the rest of the process.

    tfmot sets ``TF_USE_LEGACY_KERAS=1`` at import and then touches ``tf.keras``; if that is the first
    access, TensorFlow's lazy loader binds ``tf.keras`` to tf_keras for good. Binding it first (to
    whatever the user configured) and restoring the variable afterwards leaves the user's setup as is.
    """
    import tensorflow as tf

    before = os.environ.get("TF_USE_LEGACY_KERAS")
    getattr(tf.keras, "__name__", None)  # resolve the lazy tf.keras now, under the user's settings
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as exc:
        from tinyml_kit.errors import MissingDependencyError

        raise MissingDependencyError("tensorflow-model-optimization is not installed "
                                     "(`pip install 'tensorflow-model-optimization==0.8.*'`).") from exc
    finally:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
    return tfmot
