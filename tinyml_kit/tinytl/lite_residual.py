"""The lite residual branch of TinyTL (Cai et al., NeurIPS 2020, section 3.2) as a Keras 3 layer."""

from __future__ import annotations

import functools
from typing import Any

import keras
from keras import ops

from tinyml_kit.zoo.blocks import make_divisible

NORMS = ("group", "batch")
PADDINGS = ("same", "symmetric")
UPSAMPLES = ("bilinear", "nearest")


def branch_kernel_size(max_kernel: int, resolution: int) -> int:
    """The official rule: shrink ``max_kernel`` by 2 while it exceeds the (pooled) feature map side."""
    kernel = max_kernel
    while kernel > resolution and kernel > 1:
        kernel -= 2
    return max(kernel, 1)


def branch_mid_channels(in_channels: int, expand: float) -> int:
    """Width of the branch: ``in_channels * expand`` rounded to a multiple of 8 (``make_divisible``)."""
    return make_divisible(int(in_channels * expand), 8)


def _group_count(channels: int, channels_per_group: int) -> int:
    """Groups of a GroupNormalization with ``channels_per_group`` channels each (largest divisor below)."""
    groups = max(1, channels // channels_per_group)
    while channels % groups:
        groups -= 1
    return groups


def _he_fan_out() -> keras.initializers.Initializer:
    """PyTorch-style ``he_fout`` init of the official code: N(0, sqrt(2 / (k * k * out)))."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


@functools.cache
def native_grouped_conv() -> bool:
    """Whether this TensorFlow build runs grouped ``Conv2D`` (and its gradient) on the CPU natively."""
    import tensorflow as tf

    try:
        with tf.device("CPU:0"):
            x = tf.ones([1, 4, 4, 4])
            kernel = tf.ones([3, 3, 2, 4])
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                y = tf.nn.conv2d(x, kernel, 1, "SAME")
            tape.gradient(y, [x, kernel])
        return True
    except (tf.errors.OpError, ValueError):
        return False


@keras.saving.register_keras_serializable(package="tinyml_kit")
class GroupConv2D(keras.layers.Conv2D):
    """``Conv2D`` whose grouped convolution avoids Keras' XLA detour on the TensorFlow CPU backend.

    Keras compiles every grouped convolution with XLA on TensorFlow (about 20x slower on CPU for the
    small convolutions of lite residual branches). This layer calls ``tf.nn.conv2d`` directly when
    the TensorFlow build supports grouped convolutions natively (oneDNN builds do), and otherwise
    convolves each group separately and concatenates. Same weights and results as ``Conv2D``.
    """

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        if self.groups == 1 or keras.backend.backend() != "tensorflow" or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        padding, strides, dilations = self.padding.upper(), list(self.strides), list(self.dilation_rate)
        if native_grouped_conv():
            return tf.nn.conv2d(inputs, kernel, strides, padding, dilations=dilations)
        pieces = zip(
            tf.split(inputs, self.groups, axis=-1), tf.split(kernel, self.groups, axis=-1), strict=True
        )
        return tf.concat(
            [tf.nn.conv2d(x, k, strides, padding, dilations=dilations) for x, k in pieces], axis=-1
        )


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected `{name}` to be an integer >= {minimum}. Received: {name}={value!r}")
    return value


@keras.saving.register_keras_serializable(package="tinyml_kit")
class LiteResidual(keras.layers.Layer):
    """Lite residual branch added to the main branch of an inverted-residual block (TinyTL).

    ``outputs = main + upsample(norm2(conv1x1(relu(norm1(group_conv(avg_pool(x)))))))``: the block
    input ``x`` is average-pooled ``downsample x downsample``, convolved by a ``kernel_size`` group
    convolution (``groups`` groups, the block's ``strides``, no bias) to ``mid`` channels, normalised,
    passed through ReLU, projected by a 1x1 convolution to the main branch's channels, normalised by
    a layer whose scale starts at zero (so a new branch leaves the network unchanged) and resized
    bilinearly (half-pixel centres, like PyTorch's ``align_corners=False``) to the main branch's
    output size (or nearest-neighbour, ``upsample="nearest"``).
    ``mid = make_divisible(in_channels * expand, 8)``. The kernel shrinks by 2 while it exceeds
    the pooled feature map; a pooled map of one pixel (or ``downsample=None``) uses global
    average pooling and a 1x1 kernel. This is the official ``LiteResidualModule``.

    Args:
        kernel_size: largest kernel of the group convolution (odd; official default 5).
        groups: groups of that convolution (official 2); ``in_channels`` and ``mid`` must divide.
        expand: width of the branch relative to the block input.
        downsample: pooling factor before the branch, or ``None`` for global average pooling.
        strides: the block's stride (applied by the group convolution).
        norm: ``"group"`` (GroupNormalization, 8 channels per group: the paper) or ``"batch"``
            (BatchNormalization, which int8 converters fold into the convolutions).
        padding: ``"same"`` (TensorFlow SAME) or ``"symmetric"`` (``k // 2`` zeros on every side,
            PyTorch's padding; differs from SAME only for stride 2).
        epsilon: epsilon of both normalisation layers.
        momentum: moving-average momentum of the batch-norm variant (Keras convention).
        group_norm_channels: channels per group of the group-norm variant.
        upsample: ``"bilinear"`` (official default) or ``"nearest"`` (the official code's
            ``upsample_type`` option; int8 runtimes without RESIZE_BILINEAR support it).
        frozen_weights: variables (``"conv1/kernel"``, ``"norm2/beta"``...) that stay frozen while
            the layer trains; kept in the config because Keras saves only the layer's flag.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: ``[block_input, main_output]``, NHWC tensors with static spatial sizes.
        training: forwarded to the normalisation layers.

    Input shape:
        ``[(batch, H, W, C_in), (batch, H_out, W_out, C_out)]``.

    Output shape:
        ``(batch, H_out, W_out, C_out)``: the main branch plus the lite residual.

    Example:
    >>> x = keras.Input((32, 32, 16))
    >>> main = keras.layers.Conv2D(24, 3, strides=2, padding="same")(x)
    >>> LiteResidual(strides=2)([x, main]).shape
    (None, 16, 16, 24)
    """

    def __init__(
        self,
        kernel_size: int = 5,
        groups: int = 2,
        expand: float = 1.0,
        downsample: int | None = 2,
        strides: int = 1,
        norm: str = "group",
        padding: str = "same",
        epsilon: float = 1e-3,
        momentum: float = 0.9,
        group_norm_channels: int = 8,
        upsample: str = "bilinear",
        frozen_weights: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.frozen_weights = tuple(frozen_weights or ())
        self.kernel_size = _check_int("kernel_size", kernel_size, 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"Expected an odd `kernel_size`. Received: kernel_size={kernel_size}")
        self.groups = _check_int("groups", groups, 1)
        if isinstance(expand, bool) or not isinstance(expand, int | float) or expand <= 0:
            raise ValueError(f"Expected `expand` to be a positive number. Received: expand={expand!r}")
        self.expand = float(expand)
        self.downsample = None if downsample is None else _check_int("downsample", downsample, 1)
        self.strides = _check_int("strides", strides, 1)
        if norm not in NORMS:
            raise ValueError(f"Expected `norm` in {NORMS}. Received: norm={norm!r}")
        self.norm = norm
        if padding not in PADDINGS:
            raise ValueError(f"Expected `padding` in {PADDINGS}. Received: padding={padding!r}")
        self.padding = padding
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.group_norm_channels = _check_int("group_norm_channels", group_norm_channels, 1)
        if upsample not in UPSAMPLES:
            raise ValueError(f"Expected `upsample` in {UPSAMPLES}. Received: upsample={upsample!r}")
        self.upsample = upsample

    # ------------------------------------------------------------------------------- structure
    def build(self, input_shape: list) -> None:
        block_shape, main_shape = self._split_shapes(input_shape)
        height, width, in_channels = block_shape[1], block_shape[2], block_shape[3]
        if height is None or width is None or main_shape[1] is None or main_shape[2] is None:
            raise ValueError(
                f"LiteResidual '{self.name}' needs static spatial sizes; "
                f"received {block_shape} and {main_shape}"
            )
        self.in_channels = int(in_channels)
        self.out_channels = int(main_shape[3])
        self.output_size = (int(main_shape[1]), int(main_shape[2]))
        self.mid_channels = branch_mid_channels(self.in_channels, self.expand)
        for name, channels in (("block input", self.in_channels), ("mid", self.mid_channels)):
            if channels % self.groups:
                raise ValueError(
                    f"LiteResidual '{self.name}': {name} channels ({channels}) are not divisible by "
                    f"groups={self.groups}; use groups=1 or a divisor of {channels}"
                )
        pooled = None if self.downsample is None else min(height, width) // self.downsample
        self.global_pool = pooled is None or pooled <= 1
        self.pooled_size = (
            (1, 1) if self.global_pool else (height // self.downsample, width // self.downsample)
        )
        self.effective_kernel_size = 1 if self.global_pool else branch_kernel_size(self.kernel_size, pooled)
        k = self.effective_kernel_size
        if self.global_pool:
            self.pool = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{self.name}_pool")
        else:
            self.pool = keras.layers.AveragePooling2D(
                self.downsample, self.downsample, name=f"{self.name}_pool"
            )
        symmetric = self.padding == "symmetric" and self.strides > 1 and k > 1
        self.pad = keras.layers.ZeroPadding2D(k // 2, name=f"{self.name}_pad") if symmetric else None
        self.conv1 = GroupConv2D(
            self.mid_channels, k, strides=self.strides, padding="valid" if symmetric else "same",
            groups=self.groups, use_bias=False, kernel_initializer=_he_fan_out(), name=f"{self.name}_conv1",
        )  # fmt: skip
        self.norm1 = self._make_norm(self.mid_channels, "ones", f"{self.name}_norm1")
        self.act = keras.layers.ReLU(name=f"{self.name}_relu")
        self.conv2 = keras.layers.Conv2D(
            self.out_channels, 1, use_bias=False, kernel_initializer=_he_fan_out(), name=f"{self.name}_conv2"
        )
        self.norm2 = self._make_norm(self.out_channels, "zeros", f"{self.name}_norm2")
        self.pool.build(block_shape)
        shape = (block_shape[0], *self.pooled_size, self.in_channels)
        for layer in self.sublayers[1:]:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.branch_shape = tuple(shape)
        self._apply_frozen_weights()

    # ------------------------------------------------------------------------- trainability
    def weight_key(self, sublayer: keras.layers.Layer, variable: Any) -> str:
        """``"<sublayer>/<variable>"``, e.g. ``"norm2/beta"``: the names ``frozen_weights`` uses."""
        return f"{sublayer.name.removeprefix(self.name + '_')}/{variable.name.split('/')[-1]}"

    def set_frozen_weights(self, keys: Any) -> None:
        """Freeze exactly the variables named ``keys`` (see :meth:`weight_key`)."""
        self.frozen_weights = tuple(sorted(keys))
        self._apply_frozen_weights()

    def _apply_frozen_weights(self) -> None:
        if getattr(self, "norm2", None) is None:  # sublayers not created yet
            return
        for sub in self.sublayers:
            own = list(sub._trainable_variables)
            keys = [self.weight_key(sub, v) for v in own]
            sub.trainable = self.trainable and any(k not in self.frozen_weights for k in keys)
            for variable, key in zip(own, keys, strict=True):
                variable.trainable = sub.trainable and key not in self.frozen_weights

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        keras.layers.Layer.trainable.fset(self, value)
        if hasattr(self, "frozen_weights"):
            self._apply_frozen_weights()

    def _make_norm(self, channels: int, gamma_init: str, name: str) -> keras.layers.Layer:
        if self.norm == "group":
            return keras.layers.GroupNormalization(
                _group_count(channels, self.group_norm_channels), epsilon=self.epsilon,
                gamma_initializer=gamma_init, name=name,
            )  # fmt: skip
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, gamma_initializer=gamma_init, name=name
        )

    @staticmethod
    def _split_shapes(input_shape: Any) -> tuple[tuple, tuple]:
        shapes = list(input_shape) if isinstance(input_shape, list | tuple) else []
        if len(shapes) != 2 or any(not isinstance(s, list | tuple) or len(s) != 4 for s in shapes):
            raise ValueError(
                "LiteResidual expects inputs [block_input, main_output], two NHWC tensors. "
                f"Received input shape: {input_shape}"
            )
        return tuple(shapes[0]), tuple(shapes[1])

    @property
    def sublayers(self) -> list[keras.layers.Layer]:
        """The branch's layers in execution order (after ``build``)."""
        return [layer for layer in (self.pool, self.pad, self.conv1, self.norm1, self.act, self.conv2,
                                    self.norm2) if layer is not None]  # fmt: skip

    # ---------------------------------------------------------------------------------- calling
    def call(self, inputs: list, training: bool | None = None) -> Any:
        block_input, main = inputs
        x = self.pool(block_input)
        if self.pad is not None:
            x = self.pad(x)
        x = self.conv1(x)
        x = self.norm1(x, training=training)
        x = self.act(x)
        x = self.conv2(x)
        x = self.norm2(x, training=training)
        if training and self.upsample == "bilinear" and keras.backend.backend() == "tensorflow":
            from tinyml_kit.tinytl.lean_ops import resize_bilinear

            x = resize_bilinear(x, self.output_size)
        else:  # nearest: TensorFlow's gradient reads only the static input shape
            x = ops.image.resize(x, self.output_size, interpolation=self.upsample)
        return ops.add(main, ops.cast(x, main.dtype))

    def compute_output_shape(self, input_shape: list) -> tuple:
        return self._split_shapes(input_shape)[1]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "groups": self.groups,
            "expand": self.expand,
            "downsample": self.downsample,
            "strides": self.strides,
            "norm": self.norm,
            "padding": self.padding,
            "epsilon": self.epsilon,
            "momentum": self.momentum,
            "group_norm_channels": self.group_norm_channels,
            "upsample": self.upsample,
            "frozen_weights": list(self.frozen_weights),
        }
