"""A flat, ordered view of a functional Keras model, and recognition of inverted-residual blocks.

:class:`GraphView` lists every layer call of a Functional (or built Sequential) model in execution
order, inlining nested functional models (the keras.io transfer-learning pattern
``x = base_model(x, training=False)``), with producer / consumer maps over tensors.
:func:`find_inverted_residual_blocks` recognises MobileNetV2-style blocks by structure, not by
name, so Keras ``MobileNetV2`` (``block_N_expand``...), the zoo's ProxylessNAS-Mobile and
EfficientNet-Lite0 (``blockN_expand``...) and MCUNet / TinyNAS MBConv blocks are all found::

    [1x1 conv -> norm -> act ->] [pad ->] depthwise kxk -> [norm] -> [act] -> 1x1 conv -> [norm] [-> add]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from tinyml_kit.tinytl.errors import UnsupportedArchitectureError

NORM_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.GroupNormalization,
    keras.layers.LayerNormalization,
)
HEAD_LAYERS = (
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
)


def describe(layer: keras.layers.Layer) -> str:
    return f"'{layer.name}' ({type(layer).__name__})"


@dataclass(eq=False)
class LayerCall:
    """One call of a layer: canonical ids of its input / output tensors and its position."""

    layer: keras.layers.Layer
    node: Any  # the keras Node (its ``arguments`` rebuild the call)
    inputs: list[int]
    outputs: list[int]
    index: int = 0


class GraphView:
    """Layer calls of a functional model in execution order, nested functional models inlined.

    Tensors are identified by canonical ids: a nested model's input is the same tensor as the
    argument it was called with, and its output the same as the tensor it returned.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = _functional(model)
        self.tensors: dict[int, Any] = {}
        self._alias: dict[int, int] = {}
        self.calls: list[LayerCall] = []
        self._add_model(self.model)
        self.inputs = [self.canon(t) for t in self.model.inputs]
        self.outputs = [self.canon(t) for t in self.model.outputs]
        self.producer: dict[int, LayerCall] = {}
        self.consumers: dict[int, list[LayerCall]] = {}
        for i, call in enumerate(self.calls):
            call.index = i
            for t in call.outputs:
                self.producer[t] = call
            for t in call.inputs:
                self.consumers.setdefault(t, []).append(call)

    # ---------------------------------------------------------------------------- construction
    def canon(self, tensor: Any) -> int:
        """Canonical id of a KerasTensor (or of an id)."""
        key = tensor if isinstance(tensor, int) else id(tensor)
        if not isinstance(tensor, int):
            self.tensors.setdefault(key, tensor)
        while key in self._alias:
            key = self._alias[key]
        return key

    def _add_model(self, model: keras.Model) -> None:
        depths = sorted(model._nodes_by_depth, reverse=True)
        for depth in depths:
            for node in model._nodes_by_depth[depth]:
                if node.is_input or node.operation is None:
                    continue
                op = node.operation
                if isinstance(op, keras.Model):
                    self._inline(op, node)
                    continue
                inputs = [self.canon(t) for t in node.input_tensors]
                outputs = [self.canon(t) for t in node.outputs]
                self.calls.append(LayerCall(op, node, inputs, outputs))

    def _inline(self, inner: keras.Model, node: Any) -> None:
        inner = _functional(inner)
        if len(inner.inputs) != len(node.input_tensors):
            raise UnsupportedArchitectureError(
                f"nested model {describe(inner)} is called with {len(node.input_tensors)} tensors but "
                f"has {len(inner.inputs)} inputs; flatten it into the outer model first"
            )
        for inner_t, outer_t in zip(inner.inputs, node.input_tensors, strict=True):
            self.tensors.setdefault(id(inner_t), inner_t)
            self._alias[id(inner_t)] = self.canon(outer_t)
        self._add_model(inner)
        for outer_t, inner_t in zip(node.outputs, inner.outputs, strict=True):
            self.tensors.setdefault(id(outer_t), outer_t)
            self._alias[id(outer_t)] = self.canon(inner_t)

    # -------------------------------------------------------------------------------- queries
    def tensor(self, key: int) -> Any:
        return self.tensors[key]

    def shape(self, key: int) -> tuple:
        return tuple(self.tensors[key].shape)

    def sole_consumer(self, key: int) -> LayerCall | None:
        users = self.consumers.get(key, [])
        return users[0] if len(users) == 1 else None

    def ancestors(self, key: int) -> list[LayerCall]:
        """Calls needed to compute tensor ``key``, in execution order."""
        needed: set[int] = set()
        stack = [key]
        while stack:
            call = self.producer.get(stack.pop())
            if call is None or call.index in needed:
                continue
            needed.add(call.index)
            stack.extend(call.inputs)
        return [c for c in self.calls if c.index in needed]

    def feature_tensor(self) -> int:
        """The last 4-D tensor before the classification head (the model output if it is 4-D).

        Walks back from the single output through ``HEAD_LAYERS`` (Dense, Dropout, global pooling...).
        """
        if len(self.outputs) != 1:
            raise UnsupportedArchitectureError(
                f"model '{self.model.name}' has {len(self.outputs)} outputs; TinyTL needs a single-output "
                "classifier or feature extractor"
            )
        key = self.outputs[0]
        while len(self.shape(key)) != 4:
            call = self.producer.get(key)
            if call is None:
                raise UnsupportedArchitectureError(
                    f"model '{self.model.name}' has no 4-D (NHWC) feature map before its output"
                )
            if not isinstance(call.layer, HEAD_LAYERS):
                raise UnsupportedArchitectureError(
                    f"layer {describe(call.layer)} sits between the last feature map and the output; "
                    "TinyTL replaces the head (Dense / Dropout / pooling / Flatten layers only): pass the "
                    "backbone without its top (include_top=False)"
                )
            key = call.inputs[0]
        return key

    def head_classes(self) -> int | None:
        """Units of the Dense layer nearest the output, if the model ends with a classifier."""
        key = self.outputs[0]
        while key in self.producer and len(self.shape(key)) != 4:
            call = self.producer[key]
            if isinstance(call.layer, keras.layers.Dense):
                return int(call.layer.units)
            key = call.inputs[0]
        return None


def _functional(model: keras.Model) -> keras.Model:
    if isinstance(model, keras.Sequential):
        if not model.built or not getattr(model, "_functional", None):
            raise UnsupportedArchitectureError(
                f"Sequential model '{model.name}' is not built; give it an Input (keras.Input(shape)) first"
            )
        return model._functional
    if not hasattr(model, "_nodes_by_depth"):
        raise UnsupportedArchitectureError(
            f"model '{model.name}' ({type(model).__name__}) is a subclassed model without a layer graph; "
            "TinyTL transforms functional or Sequential Keras models"
        )
    return model


# ------------------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class InvertedResidualBlock:
    """One recognised inverted-residual block (canonical tensor ids refer to a :class:`GraphView`)."""

    index: int
    input: int  # block input tensor
    main_output: int  # output of the main branch (after the projection's norm), before any add
    depthwise: str
    project: str
    expand: str | None
    add: str | None
    stride: int
    in_channels: int
    out_channels: int
    input_size: tuple[int, int]
    layers: tuple[str, ...] = field(default=())


def _is_activation(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.ReLU | keras.layers.Activation | keras.layers.LeakyReLU)


def _is_pointwise(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, keras.layers.Conv2D)
        and tuple(layer.kernel_size) == (1, 1)
        and tuple(layer.strides) == (1, 1)
        and layer.groups == 1
    )


def _follow(view: GraphView, key: int, kinds: tuple, dw: keras.layers.Layer) -> tuple[int, LayerCall | None]:
    """Step to the sole consumer of ``key`` if it is one of ``kinds``; error on fan-out."""
    users = view.consumers.get(key, [])
    if len(users) != 1:
        producer = view.producer[key].layer
        raise UnsupportedArchitectureError(
            f"inside the block of depthwise layer {describe(dw)}, the output of {describe(producer)} "
            f"feeds {len(users)} layers; an inverted-residual block is a chain "
            "(expand -> depthwise -> project)"
        )
    call = users[0]
    if isinstance(call.layer, kinds) and len(call.inputs) == 1:
        return call.outputs[0], call
    return key, None


def _walk_back(view: GraphView, key: int, kind: Any) -> LayerCall | None:
    call = view.producer.get(key)
    if call is None or not kind(call.layer) or len(call.inputs) != 1:
        return None
    if len(view.consumers.get(call.outputs[0], [])) != 1:
        return None
    return call


def _recognise(view: GraphView, dw_call: LayerCall, index: int) -> InvertedResidualBlock:
    dw = dw_call.layer
    layers = [dw.name]
    # forward: [norm] [act] project [norm]
    key = dw_call.outputs[0]
    key, call = _follow(view, key, NORM_LAYERS, dw)
    layers += [call.layer.name] if call else []
    key, call = _follow(view, key, (keras.layers.ReLU, keras.layers.Activation, keras.layers.LeakyReLU), dw)
    layers += [call.layer.name] if call else []
    users = view.consumers.get(key, [])
    project = users[0].layer if len(users) == 1 else None
    if project is None or not _is_pointwise(project):
        found = ", ".join(describe(u.layer) for u in users) or "nothing"
        raise UnsupportedArchitectureError(
            f"depthwise layer {describe(dw)} is not followed by a 1x1 projection Conv2D (found {found}); "
            "lite residual branches attach to inverted-residual blocks "
            "(1x1 expand -> depthwise -> 1x1 project), as in MobileNetV2, ProxylessNAS, "
            "EfficientNet-Lite, MCUNet"
        )
    key = users[0].outputs[0]
    layers.append(project.name)
    key, call = _follow(view, key, NORM_LAYERS, dw)
    layers += [call.layer.name] if call else []
    main_output = key
    # backward: [pad] <- [act <- norm <- expand]
    start = dw_call.inputs[0]
    pad = _walk_back(view, start, lambda layer: isinstance(layer, keras.layers.ZeroPadding2D))
    if pad is not None:
        start = pad.inputs[0]
        layers.insert(0, pad.layer.name)
    expand = None
    act = _walk_back(view, start, _is_activation)
    norm = act and _walk_back(view, act.inputs[0], lambda layer: isinstance(layer, NORM_LAYERS))
    conv = norm and _walk_back(view, norm.inputs[0], _is_pointwise)
    if conv:
        expand = conv.layer.name
        start = conv.inputs[0]
        layers[:0] = [conv.layer.name, norm.layer.name, act.layer.name]
    add = None
    users = view.consumers.get(main_output, [])
    if len(users) == 1 and isinstance(users[0].layer, keras.layers.Add) and start in users[0].inputs:
        add = users[0].layer.name
    in_shape = view.shape(start)
    return InvertedResidualBlock(
        index=index,
        input=start,
        main_output=main_output,
        depthwise=dw.name,
        project=project.name,
        expand=expand,
        add=add,
        stride=int(dw.strides[0]),
        in_channels=int(in_shape[-1]),
        out_channels=int(view.shape(main_output)[-1]),
        input_size=(int(in_shape[1]), int(in_shape[2])),
        layers=tuple(layers),
    )


def find_inverted_residual_blocks(
    view: GraphView, calls: list[LayerCall] | None = None
) -> list[InvertedResidualBlock]:
    """Every inverted-residual block among ``calls`` (default: all), in execution order.

    Raises :class:`UnsupportedArchitectureError` naming the first depthwise layer that is not part of
    such a block, or when there is none.
    """
    calls = view.calls if calls is None else calls
    blocks = []
    for call in calls:
        if isinstance(call.layer, keras.layers.DepthwiseConv2D):
            blocks.append(_recognise(view, call, len(blocks)))
    if not blocks:
        raise UnsupportedArchitectureError(
            f"model '{view.model.name}' has no inverted-residual block (1x1 expand -> depthwise -> 1x1 "
            "project); lite residual methods need MobileNetV2-style blocks. The methods 'last', "
            "'norm+last', 'bias' and 'full' work on any CNN"
        )
    return blocks
