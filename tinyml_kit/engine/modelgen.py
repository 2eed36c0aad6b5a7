"""Small int8 ``.tflite`` test and benchmark models, built with Keras and converted by TensorFlow.

Every case is a tiny Keras model that exercises one engine op (or a whole network), converted with
``tf.lite.TFLiteConverter`` under fixed seeds. :data:`CASES` maps a case name to its :class:`Case`;
:func:`generate` converts a case once and caches the file by name and a hash of everything that shapes it
(builder source, parameters, conversion mode, converter source, TensorFlow version).

``Case.ops`` lists the TFLite builtin ops the converted file really contains (the converter fuses and
rewrites: a ReLU after a convolution becomes its fused activation, ``keras.ops.squeeze`` becomes
RESHAPE...). ``tests/engine/test_engine_tflm_modelgen.py`` asserts these lists, so a converter change that
alters them shows up as a failing test, not as a sweep that silently stopped covering an op.

Conversion modes (``Case.quant``):

- ``"int8"``: full-integer int8, int8 input and output (what the engine compiles);
- ``"float_io"``: full-integer int8 inside, float32 input/output (adds QUANTIZE / DEQUANTIZE);
- ``"float"``: no quantisation at all; ``"dynamic"``: dynamic-range (hybrid: int8 weights, float
  activations). These two exist for the engine's error paths (``Case.expect == "unsupported"``).

``python -m tinyml_kit.engine.modelgen --list`` prints every case with its ops (the table of what each
case covers); ``python -m tinyml_kit.engine.modelgen NAME... [-o DIR]`` generates cases.

TensorFlow and Keras are imported only when a model is actually built.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tinyml_kit.engine.errors import EngineError

Quant = Literal["int8", "float_io", "float", "dynamic"]
SEED = 0
REPRESENTATIVE_SAMPLES = 32


class ModelGenError(EngineError):
    """A test model could not be built or converted, or its ops differ from the case's declaration."""


@dataclass(frozen=True)
class Case:
    """One generated model: how to build it, how to convert it and which TFLite ops it must contain."""

    name: str
    build: Callable[..., Any]  # (**params) -> keras.Model with a fixed batch size of 1
    ops: tuple[str, ...]  # sorted distinct TFLite builtin op names of the converted model
    params: dict[str, Any] = field(default_factory=dict)
    quant: Quant = "int8"
    slow: bool = False  # whole networks: slow test tier and benchmarks only
    # "bitexact": the engine must match the reference; "unsupported": the engine must refuse it;
    # "reference_aborts": TFLM and LiteRT abort the process on it (crash-handling tests).
    expect: Literal["bitexact", "unsupported", "reference_aborts"] = "bitexact"
    doc: str = ""
    rewrite: Callable[[bytes], bytes] | None = None  # post-conversion flatbuffer edit (see rewrite_*)

    def cache_key(self) -> str:
        """Hash of everything that determines the converted bytes."""
        parts = [
            self.name,
            inspect.getsource(self.build),
            repr(sorted(self.params.items())),
            self.quant,
            *(inspect.getsource(fn) for fn in _SHARED_HELPERS),
            inspect.getsource(self.rewrite) if self.rewrite else "",
            _package_version("tensorflow"),
            _package_version("keras"),
        ]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


# --------------------------------------------------------------------------- builders (Keras, lazy)


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(SEED)
    return keras


def _conv_kwargs() -> dict[str, Any]:
    # Non-zero biases so the bias path is exercised (Keras initialises biases to zero).
    return {"bias_initializer": "random_normal"}


def build_conv(size: int = 12, cin: int = 3, cout: int = 8, kernel: int = 3, stride: int = 1,
               padding: str = "same", dilation: int = 1, activation: str | None = None) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, cin), batch_size=1)
    out = keras.layers.Conv2D(cout, kernel, strides=stride, padding=padding, dilation_rate=dilation,
                              activation=activation, **_conv_kwargs())(inp)
    return keras.Model(inp, out)


def build_depthwise(size: int = 12, channels: int = 6, kernel: int = 3, stride: int = 1,
                    padding: str = "same", multiplier: int = 1, activation: str | None = None) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    out = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, depth_multiplier=multiplier,
                                       activation=activation, **_conv_kwargs())(inp)
    return keras.Model(inp, out)


def build_dense(features: int = 24, units: int = 10, activation: str | None = None,
                flatten_from: tuple[int, ...] | None = None) -> Any:
    keras = _keras()
    if flatten_from:
        inp = keras.Input(flatten_from, batch_size=1)
        x = keras.layers.Flatten()(inp)
    else:
        inp = x = keras.Input((features,), batch_size=1)
    out = keras.layers.Dense(units, activation=activation, bias_initializer="random_normal")(x)
    return keras.Model(inp, out)


def build_add_residual(size: int = 10, channels: int = 8, activation: str | None = None) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    y = keras.layers.Conv2D(channels, 3, padding="same", **_conv_kwargs())(inp)
    out = keras.layers.Add()([inp, y])
    if activation:
        out = keras.layers.Activation(activation)(out)
    return keras.Model(inp, out)


def build_mul(size: int = 10, channels: int = 6) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    a = keras.layers.Conv2D(channels, 1, **_conv_kwargs())(inp)
    b = keras.layers.Conv2D(channels, 3, padding="same", **_conv_kwargs())(inp)
    return keras.Model(inp, keras.layers.Multiply()([a, b]))


def build_pool(kind: str = "avg", size: int = 12, channels: int = 5, pool: int = 2, stride: int = 2,
               padding: str = "valid") -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    layer = keras.layers.AveragePooling2D if kind == "avg" else keras.layers.MaxPooling2D
    return keras.Model(inp, layer(pool, strides=stride, padding=padding)(inp))


def build_global_avg(size: int = 8, channels: int = 12, keepdims: bool = False) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D(keepdims=keepdims)(inp))


def build_pad(size: int = 9, channels: int = 4,
              pad: tuple[tuple[int, int], tuple[int, int]] = ((1, 2), (2, 1))) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    x = keras.layers.ZeroPadding2D(pad)(inp)
    return keras.Model(inp, keras.layers.Conv2D(6, 3, **_conv_kwargs())(x))


def build_reshape(size: int = 6, channels: int = 4) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    x = keras.layers.Conv2D(channels, 1, **_conv_kwargs())(inp)
    x = keras.layers.Reshape((size * size // 2, 2 * channels))(x)
    return keras.Model(inp, keras.layers.Dense(5, bias_initializer="random_normal")(x))


def build_squeeze(size: int = 5, channels: int = 6) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    x = keras.layers.Conv2D(10, size, **_conv_kwargs())(inp)  # -> 1x1x1x10
    return keras.Model(inp, keras.layers.Reshape((10,))(x))


def rewrite_reshape_as_squeeze(data: bytes) -> bytes:
    """Turn every RESHAPE that only drops size-1 dimensions into a SQUEEZE.

    Today's converter lowers ``tf.squeeze`` to RESHAPE, but models from older converters (and TFLM's
    own examples) contain SQUEEZE, so the case is produced by editing the flatbuffer.
    """
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    squeeze_code = fb.OperatorCodeT()
    squeeze_code.builtinCode = fb.BuiltinOperator.SQUEEZE
    squeeze_code.deprecatedBuiltinCode = fb.BuiltinOperator.SQUEEZE
    squeeze_code.version = 1
    model.operatorCodes.append(squeeze_code)
    squeeze_index = len(model.operatorCodes) - 1
    graph = model.subgraphs[0]
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != fb.BuiltinOperator.RESHAPE:
            continue
        src = list(graph.tensors[op.inputs[0]].shape)
        dst = list(graph.tensors[op.outputs[0]].shape)
        ones = [i for i, d in enumerate(src) if d == 1]
        n_drop = len(src) - len(dst)
        drop = ones[len(ones) - n_drop:] if 0 < n_drop <= len(ones) else []  # keep the batch dim
        if not drop or [d for i, d in enumerate(src) if i not in drop] != dst:
            continue  # not a pure squeeze
        options = fb.SqueezeOptionsT()
        options.squeezeDims = drop
        op.opcodeIndex = squeeze_index
        op.inputs = [op.inputs[0]]
        op.builtinOptionsType = fb.BuiltinOptions.SqueezeOptions
        op.builtinOptions = options
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def build_softmax(features: int = 16, units: int = 10) -> Any:
    keras = _keras()
    inp = keras.Input((features,), batch_size=1)
    x = keras.layers.Dense(units, bias_initializer="random_normal")(inp)
    return keras.Model(inp, keras.layers.Softmax()(x))


def build_tiny_logits(features: int = 16, units: int = 10, stddev: float = 1e-7) -> Any:
    """Dense with ~1e-7 weights then softmax: SOFTMAX's input scale is so small that TFLM's and LiteRT's
    Prepare cannot represent the multiplier and abort the process (a valid file that crashes TFLM)."""
    keras = _keras()
    inp = keras.Input((features,), batch_size=1)
    x = keras.layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(stddev=stddev))(inp)
    return keras.Model(inp, keras.layers.Softmax()(x))


def build_activation(activation: str = "relu", size: int = 8, channels: int = 4) -> Any:
    """A standalone activation on the model input (so the converter cannot fuse it), then a conv."""
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    x = keras.layers.Activation(activation)(inp)
    return keras.Model(inp, keras.layers.Conv2D(5, 1, **_conv_kwargs())(x))


def build_concat(size: int = 8, channels: int = 3) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    a = keras.layers.Conv2D(4, 1, **_conv_kwargs())(inp)
    b = keras.layers.Conv2D(5, 3, padding="same", **_conv_kwargs())(inp)
    return keras.Model(inp, keras.layers.Concatenate(axis=-1)([a, b]))


def build_transpose(size: int = 6, channels: int = 5) -> Any:
    keras = _keras()
    inp = keras.Input((size, size + 1, channels), batch_size=1)
    x = keras.layers.Permute((3, 1, 2))(inp)
    return keras.Model(inp, keras.layers.Conv2D(4, 1, **_conv_kwargs())(x))


def build_resize_nearest(size: int = 5, channels: int = 4, factor: int = 2) -> Any:
    keras = _keras()
    inp = keras.Input((size, size, channels), batch_size=1)
    # Resizing (tf.image.resize), not UpSampling2D: Keras 3 lowers that to RESHAPE + TILE.
    x = keras.layers.Resizing(size * factor, size * factor, interpolation="nearest")(inp)
    return keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same", **_conv_kwargs())(x))


def build_patch_chain(size: int = 19, padding: str = "same", pool: str = "avg") -> Any:
    """A first stage for patch-based inference: a stride-2 convolution on 3 channels, depthwise 3x3, a 1x1
    expansion, depthwise 5x5 stride 2, pooling and a 1x1 projection, then a global head (MEAN + dense).
    Odd sizes give patches of unequal size; ``padding`` applies to every window op."""
    keras = _keras()
    inp = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding=padding, activation="relu6", **_conv_kwargs())(inp)
    x = keras.layers.DepthwiseConv2D(3, padding=padding, activation="relu", **_conv_kwargs())(x)
    x = keras.layers.Conv2D(12, 1, **_conv_kwargs())(x)
    x = keras.layers.DepthwiseConv2D(5, strides=2, padding=padding, **_conv_kwargs())(x)
    if pool == "avg":
        x = keras.layers.AveragePooling2D(3, strides=1, padding=padding)(x)
    else:
        x = keras.layers.MaxPooling2D(2, strides=2, padding=padding)(x)
    x = keras.layers.Conv2D(6, 1, activation="relu", **_conv_kwargs())(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, bias_initializer="random_normal")(x))


def build_mobilenet_v2(size: int = 96, alpha: float = 0.35, classes: int = 1000) -> Any:
    keras = _keras()
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None,
                                          classes=classes, classifier_activation="softmax")
    recalibrate_batchnorm(base)
    inp = keras.Input((size, size, 3), batch_size=1)  # a static batch of 1, as on a microcontroller
    return keras.Model(inp, base(inp))


def recalibrate_batchnorm(model: Any, samples: int = 32) -> Any:
    """Set every BatchNormalization's moving statistics to those of its input on representative data.

    An untrained network with identity BN statistics shrinks (or blows up) its activations layer after
    layer; after int8 conversion the last layers then have scales near 1e-9 and TFLM aborts while
    preparing SOFTMAX. Recalibrating BN layer by layer (as TinyNAS does for sampled sub-networks) gives
    every layer unit-variance pre-activations, like a trained network. ``model`` must be functional.
    """
    import keras

    shape = tuple(int(d) if d is not None else 1 for d in model.inputs[0].shape)
    rng = np.random.default_rng(SEED)
    data = rng.uniform(-1.0, 1.0, size=(samples, *shape[1:])).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            x = np.asarray(keras.Model(model.inputs, layer.input)(data))
            axes = tuple(range(x.ndim - 1))
            layer.moving_mean.assign(x.mean(axis=axes))
            layer.moving_variance.assign(x.var(axis=axes))
    return model


def _inverted_residual(keras: Any, x: Any, out_ch: int, kernel: int, expand: int, stride: int) -> Any:
    in_ch = x.shape[-1]
    y = x
    if expand != 1:
        y = keras.layers.Conv2D(in_ch * expand, 1, use_bias=False)(y)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.Conv2D(out_ch, 1, use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    if stride == 1 and in_ch == out_ch:
        y = keras.layers.Add()([x, y])
    return y


# (out channels, kernel, expand, stride): mixed kernels 3/5/7 and expand ratios 3/4/6, as TinyNAS picks.
MCUNET_BLOCKS = (
    (8, 3, 1, 1),
    (16, 7, 3, 2), (16, 3, 4, 1),
    (24, 5, 6, 2), (24, 7, 3, 1), (24, 3, 4, 1),
    (40, 5, 4, 2), (40, 3, 6, 1),
    (48, 7, 3, 1),
    (96, 5, 6, 2), (96, 3, 4, 1),
)


def build_mcunet_style(size: int = 64, classes: int = 10) -> Any:
    """An MCUNet-like network: inverted residual blocks with mixed kernel sizes and expand ratios."""
    keras = _keras()
    inp = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    for out_ch, kernel, expand, stride in MCUNET_BLOCKS:
        x = _inverted_residual(keras, x, out_ch, kernel, expand, stride)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(classes)(x)
    return recalibrate_batchnorm(keras.Model(inp, keras.layers.Softmax()(x)))


def build_resnet_style(size: int = 48, classes: int = 10, widths: tuple[int, ...] = (16, 32, 64)) -> Any:
    """A small ResNet: 3x3 stem, max pool, basic blocks (two 3x3 conv-BN + identity/projection shortcut)."""
    keras = _keras()

    def conv_bn(x: Any, width: int, kernel: int, stride: int = 1, relu: bool = True) -> Any:
        x = keras.layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU()(x) if relu else x

    inp = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.MaxPooling2D(2)(conv_bn(inp, widths[0], 3, 2))
    for stage, width in enumerate(widths):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(conv_bn(x, width, 3, stride), width, 3, relu=False)
            shortcut = x if stride == 1 and x.shape[-1] == width else conv_bn(x, width, 1, stride, relu=False)
            x = keras.layers.ReLU()(keras.layers.Add()([shortcut, y]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(classes)(x)
    return recalibrate_batchnorm(keras.Model(inp, keras.layers.Softmax()(x)))


# --------------------------------------------------------------------------- registry


def _case(name: str, build: Callable[..., Any], ops: str, doc: str = "", **kw: Any) -> Case:
    params = kw.pop("params", {})
    return Case(name=name, build=build, ops=tuple(sorted(ops.split())), params=params, doc=doc, **kw)


_CASE_LIST: list[Case] = [
    # CONV_2D: kernel sizes, strides, paddings, dilation, odd channel counts, fused activations.
    _case("conv_k1", build_conv, "CONV_2D", params={"kernel": 1}),
    _case("conv_k3_same", build_conv, "CONV_2D", params={"kernel": 3}),
    _case("conv_k3_s2_same", build_conv, "CONV_2D", params={"kernel": 3, "stride": 2}),
    _case("conv_k3_s2_valid", build_conv, "CONV_2D", params={"kernel": 3, "stride": 2, "padding": "valid"}),
    _case("conv_k5_valid", build_conv, "CONV_2D", params={"kernel": 5, "padding": "valid"}),
    _case("conv_k5_s2_same", build_conv, "CONV_2D", params={"kernel": 5, "stride": 2, "size": 13}),
    _case("conv_k7_s2_same", build_conv, "CONV_2D", params={"kernel": 7, "stride": 2, "size": 14}),
    _case("conv_k7_valid", build_conv, "CONV_2D", params={"kernel": 7, "padding": "valid"}),
    _case("conv_dilation2", build_conv, "CONV_2D", params={"kernel": 3, "dilation": 2, "size": 11}),
    _case("conv_odd_channels", build_conv, "CONV_2D",
          params={"cin": 5, "cout": 7, "kernel": 3, "size": 9}),
    _case("conv_relu", build_conv, "CONV_2D", params={"activation": "relu"}, doc="ReLU fused into CONV_2D"),
    _case("conv_relu6", build_conv, "CONV_2D", params={"activation": "relu6", "stride": 2},
          doc="ReLU6 fused into CONV_2D"),
    # DEPTHWISE_CONV_2D: depth multiplier 1 and 2.
    _case("dwconv_k3", build_depthwise, "DEPTHWISE_CONV_2D", params={"kernel": 3}),
    _case("dwconv_k3_s2_relu6", build_depthwise, "DEPTHWISE_CONV_2D",
          params={"kernel": 3, "stride": 2, "activation": "relu6"}),
    _case("dwconv_k5_valid", build_depthwise, "DEPTHWISE_CONV_2D", params={"kernel": 5, "padding": "valid"}),
    _case("dwconv_k7_s2", build_depthwise, "DEPTHWISE_CONV_2D",
          params={"kernel": 7, "stride": 2, "size": 14, "channels": 5}),
    _case("dwconv_mult2", build_depthwise, "DEPTHWISE_CONV_2D", params={"kernel": 3, "multiplier": 2}),
    # FULLY_CONNECTED and friends.
    _case("dense", build_dense, "FULLY_CONNECTED"),
    _case("dense_relu", build_dense, "FULLY_CONNECTED", params={"activation": "relu", "features": 33}),
    _case("flatten_dense", build_dense, "FULLY_CONNECTED RESHAPE", params={"flatten_from": (4, 4, 3)}),
    # Elementwise.
    _case("add_residual", build_add_residual, "ADD CONV_2D"),
    _case("add_relu", build_add_residual, "ADD CONV_2D", params={"activation": "relu"},
          doc="ReLU fused into ADD"),
    _case("mul", build_mul, "CONV_2D MUL"),
    # Pooling and reductions.
    _case("avgpool_2x2", build_pool, "AVERAGE_POOL_2D"),
    _case("avgpool_3x3_s2_same", build_pool, "AVERAGE_POOL_2D",
          params={"pool": 3, "stride": 2, "padding": "same", "size": 11}),
    _case("maxpool_2x2", build_pool, "MAX_POOL_2D", params={"kind": "max"}),
    _case("maxpool_3x3_s2_same", build_pool, "MAX_POOL_2D",
          params={"kind": "max", "pool": 3, "stride": 2, "padding": "same", "size": 11}),
    _case("mean", build_global_avg, "MEAN", doc="GlobalAveragePooling2D -> MEAN"),
    _case("mean_keepdims", build_global_avg, "MEAN", params={"keepdims": True}),
    # Data movement.
    _case("pad", build_pad, "CONV_2D PAD", doc="ZeroPadding2D -> PAD"),
    _case("reshape", build_reshape, "CONV_2D FULLY_CONNECTED RESHAPE"),
    _case("squeeze", build_squeeze, "CONV_2D SQUEEZE", rewrite=rewrite_reshape_as_squeeze,
          doc="RESHAPE 1x1x1x10 -> 1x10 rewritten as SQUEEZE(dims 1, 2)"),
    _case("concat", build_concat, "CONCATENATION CONV_2D"),
    _case("transpose", build_transpose, "CONV_2D TRANSPOSE"),
    _case("resize_nearest", build_resize_nearest, "CONV_2D RESIZE_NEAREST_NEIGHBOR"),
    # Activations.
    _case("softmax", build_softmax, "FULLY_CONNECTED SOFTMAX"),
    _case("logistic", build_activation, "CONV_2D LOGISTIC", params={"activation": "sigmoid"}),
    _case("hard_swish", build_activation, "CONV_2D HARD_SWISH", params={"activation": "hard_swish"}),
    _case("relu", build_activation, "CONV_2D RELU", params={"activation": "relu"}),
    _case("relu6", build_activation, "CONV_2D RELU6", params={"activation": "relu6"}),
    # Float input/output around an int8 body.
    _case("conv_float_io", build_conv, "CONV_2D DEQUANTIZE QUANTIZE", quant="float_io",
          doc="int8 body, float32 I/O: QUANTIZE in, DEQUANTIZE out"),
    # First stages for patch-based inference (tinyml_kit.engine.patch).
    _case("patch_chain_same", build_patch_chain,
          "AVERAGE_POOL_2D CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED MEAN",
          doc="stride-2 SAME conv on 3 channels, dw 3x3, 1x1, dw 5x5 s2, avg pool 3x3, 1x1; 19x19"),
    _case("patch_chain_valid", build_patch_chain,
          "CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED MAX_POOL_2D MEAN",
          params={"size": 40, "padding": "valid", "pool": "max"},
          doc="the same chain with VALID padding and a 2x2 max pool; 40x40"),
    # Whole networks.
    _case("mobilenet_v2_035_96", build_mobilenet_v2,
          "ADD CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED MEAN SOFTMAX", slow=True,
          doc="keras.applications.MobileNetV2(alpha=0.35, 96x96, weights=None); its ZeroPadding2D folds "
          "into the convolutions"),
    _case("mcunet_style", build_mcunet_style, "ADD CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED MEAN SOFTMAX",
          slow=True, doc="inverted residuals, kernels 3/5/7, expand 3/4/6, 64x64"),
    _case("resnet_style", build_resnet_style, "ADD CONV_2D FULLY_CONNECTED MAX_POOL_2D MEAN SOFTMAX",
          slow=True, doc="basic-block ResNet, 48x48"),
    # A valid model that aborts TFLM and LiteRT (crash handling).
    _case("softmax_tiny_scale", build_tiny_logits, "FULLY_CONNECTED SOFTMAX", expect="reference_aborts",
          doc="softmax input scale ~1e-9: TFLM and LiteRT abort in Prepare"),
    # Models the engine must refuse with a clear error.
    _case("float_model", build_dense, "FULLY_CONNECTED", quant="float", expect="unsupported",
          doc="float32 everywhere"),
    _case("dynamic_range_model", build_dense, "FULLY_CONNECTED", quant="dynamic", expect="unsupported",
          params={"features": 64, "units": 32}, doc="hybrid: int8 weights, float activations"),
]

CASES: dict[str, Case] = {case.name: case for case in _CASE_LIST}


def op_cases() -> list[str]:
    """Names of the single-op cases the engine must reproduce bit-exactly (the default test tier)."""
    return [n for n, c in CASES.items() if c.expect == "bitexact" and not c.slow]


def net_cases() -> list[str]:
    """Names of the whole-network cases (slow tier and benchmarks)."""
    return [n for n, c in CASES.items() if c.expect == "bitexact" and c.slow]


def unsupported_cases() -> list[str]:
    """Names of the cases the engine must refuse (float and dynamic-range models)."""
    return [n for n, c in CASES.items() if c.expect == "unsupported"]


# --------------------------------------------------------------------------- conversion


def _representative(shape: tuple[int, ...]) -> Iterator[list[np.ndarray]]:
    rng = np.random.default_rng(SEED)
    for _ in range(REPRESENTATIVE_SAMPLES):
        yield [rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)]


def _convert(model: Any, quant: Quant) -> bytes:
    import warnings

    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant in ("int8", "float_io"):
        shape = tuple(int(d) for d in model.inputs[0].shape)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative(shape)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if quant == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": int8 I/O is intended
        warnings.simplefilter("ignore", UserWarning)
        return converter.convert()


@contextlib.contextmanager
def _quiet_fds(log: Path) -> Iterator[None]:
    """Send C-level and Python stdout/stderr (TF and absl chatter) to ``log`` while converting."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "wb") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def default_dir() -> Path:
    """Where :func:`generate` caches models when no folder is given."""
    from tinyml_kit._paths import cache_dir

    return cache_dir() / "modelgen"


def case_path(name: str, out_dir: str | Path | None = None) -> Path:
    """The cache file of case ``name`` (it may not exist yet)."""
    case = _get_case(name)
    return Path(out_dir or default_dir()) / f"{name}-{case.cache_key()}.tflite"


def _get_case(name: str) -> Case:
    try:
        return CASES[name]
    except KeyError:
        raise ModelGenError(f"unknown model case '{name}'; valid cases: {', '.join(CASES)}") from None


def generate(name: str, out_dir: str | Path | None = None, check_ops: bool = True) -> Path:
    """Build and convert case ``name`` into ``out_dir`` (default: the tinyml-kit cache); return the file.

    A file already converted from the same builder source, parameters and TensorFlow version is reused.
    With ``check_ops`` the converted model must contain exactly ``Case.ops``, else :class:`ModelGenError`.
    """
    case = _get_case(name)
    path = case_path(name, out_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelgen-") as tmp:
        log = Path(tmp) / "convert.log"
        try:
            with _quiet_fds(log):
                model = case.build(**case.params)
                data = _convert(model, case.quant)
            if case.rewrite is not None:
                data = case.rewrite(data)
        except Exception as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ModelGenError(f"could not build/convert model case '{name}': {exc}\n{tail}") from exc
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{name}-", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if check_ops:
        found = tuple(sorted(set(model_ops(tmp_name))))
        if found != case.ops:
            os.unlink(tmp_name)
            raise ModelGenError(
                f"model case '{name}' converted to ops {list(found)}, but the case declares "
                f"{list(case.ops)}; the TensorFlow converter changed: update the case in "
                "tinyml_kit/engine/modelgen.py."
            )
    os.replace(tmp_name, path)
    return path


# Helpers whose source is part of every case's cache key (a builder's own source is added per case).
_SHARED_HELPERS = (_keras, _conv_kwargs, recalibrate_batchnorm, _inverted_residual, _convert, _representative)


# --------------------------------------------------------------------------- inspecting .tflite files


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and quantisation of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name, e.g. "int8"
    scale: float | None = None
    zero_point: int | None = None


def _read_model(path: str | Path) -> Any:
    import tflite

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EngineError(f"cannot read model file {path}: {exc.strerror}") from exc
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise EngineError(f"{path} is not a TensorFlow Lite flatbuffer (no 'TFL3' identifier); "
                          "pass a .tflite file produced by tf.lite.TFLiteConverter.")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        return model
    except Exception as exc:
        raise EngineError(f"{path}: corrupt TensorFlow Lite flatbuffer ({exc}); re-export the model.") \
            from exc


def model_ops(path: str | Path) -> list[str]:
    """TFLite builtin op names of the first subgraph, in execution order."""
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    model = _read_model(path)
    graph = model.Subgraphs(0)
    ops = []
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ops.append(names.get(builtin, f"BUILTIN_{builtin}"))
    return ops


def io_specs(path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) of the first subgraph, read from the flatbuffer without TensorFlow."""
    import tflite

    types = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    types["float32"] = "float32"
    model = _read_model(path)
    graph = model.Subgraphs(0)

    def spec(index: int) -> TensorSpec:
        t = graph.Tensors(index)
        q = t.Quantization()
        scale = zero = None
        if q is not None and q.ScaleLength() > 0:
            scale, zero = float(q.Scale(0)), int(q.ZeroPoint(0))
        name = t.Name().decode(errors="replace") if t.Name() else f"tensor{index}"
        return TensorSpec(name, tuple(int(d) for d in t.ShapeAsNumpy()), types[t.Type()], scale, zero)

    ins = [spec(int(i)) for i in graph.InputsAsNumpy()]
    outs = [spec(int(i)) for i in graph.OutputsAsNumpy()]
    return ins, outs


def random_inputs(path: str | Path, n: int, seed: int = 0) -> list[list[np.ndarray]]:
    """``n`` random samples (one array per model input): full int8 range, or U(-1, 1) for float inputs."""
    rng = np.random.default_rng(seed)
    ins, _ = io_specs(path)
    samples = []
    for _ in range(n):
        sample = []
        for spec in ins:
            if spec.dtype in ("int8", "uint8", "int16"):
                info = np.iinfo(spec.dtype)
                x = rng.integers(info.min, info.max, size=spec.shape, endpoint=True)
                sample.append(x.astype(spec.dtype))
            else:
                sample.append(rng.uniform(-1.0, 1.0, size=spec.shape).astype(spec.dtype))
        samples.append(sample)
    return samples


def case_table() -> str:
    """A markdown table of every case: name, tier, conversion, expectation, TFLite ops, notes."""
    lines = ["| case | tier | conversion | expect | TFLite ops | notes |", "|---|---|---|---|---|---|"]
    for c in CASES.values():
        lines.append(f"| {c.name} | {'slow' if c.slow else 'default'} | {c.quant} | {c.expect} | "
                     f"{' '.join(c.ops)} | {c.doc} |")
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tinyml_kit.engine.modelgen",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"cases to generate; any of {', '.join(CASES)}")
    parser.add_argument("--list", action="store_true", help="print the table of cases and their ops")
    parser.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: the cache)")
    args = parser.parse_args(argv)
    if args.list:
        print(case_table())
    for name in args.names:
        print(generate(name, args.out))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main())
