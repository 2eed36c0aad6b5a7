"""Estimate a Keras model's int8 SRAM and flash on a microcontroller without converting it.

The estimate mirrors what the TFLite converter and tinyml-kit's engine make of the graph:

* every layer that becomes a TFLite op (convolutions, dense, pooling, add, concatenate, softmax...)
  is one planner step writing a new int8 buffer of ``prod(shape)`` bytes (batch 1);
* layers the converter folds or fuses write no buffer: BatchNormalization (folded into the
  convolution), ReLU/ReLU6 (fused activations), Dropout, Flatten/Reshape (aliases), Rescaling
  (folded into the input quantisation or the first convolution), and ZeroPadding2D feeding only
  convolutions (fused into their padding);
* activations other than relu/relu6/linear on a Conv/Dense (softmax, sigmoid, swish...) add a step.

The activation buffers go to the engine's memory planner (:func:`tinyml_kit.engine.planner.plan`),
without in-place overlaps or kernel scratch. Flash counts int8 weights, int32 biases (one per output
channel, also where BatchNormalization supplies the bias) and two int32 requantisation words per
output channel, plus ``runtime_flash_bytes`` for code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyml_kit.export._graph import model_inputs, run_graph
from tinyml_kit.export.bridge import keras3_class_name
from tinyml_kit.export.errors import ExportError

ALIAS_LAYERS = frozenset({"BatchNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
                          "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                          "Flatten", "Reshape", "Rescaling", "Identity", "InputLayer"})
FUSED_ACTIVATIONS = frozenset({"linear", "relu", "relu6"})
WEIGHTED_LAYERS = frozenset({"Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                             "SeparableConv2D", "Conv2DTranspose", "Dense"})
PAD_FUSING_CONSUMERS = frozenset({"Conv2D", "DepthwiseConv2D", "SeparableConv2D"})
REQUANT_BYTES_PER_CHANNEL = 8  # int32 multiplier + int32 shift


@dataclass
class MemoryEstimate:
    """Estimated int8 memory of a model on a microcontroller."""

    sram_bytes: int  # planned activation arena
    flash_bytes: int  # constants (+ runtime_flash_bytes)
    weight_bytes: int  # int8 weights + int32 biases + requantisation words
    step_names: list[str] = field(default_factory=list)
    plan: Any = None  # tinyml_kit.engine.planner.Plan
    problem: Any = None  # tinyml_kit.engine.planner.Problem


@dataclass
class _Value:
    """A tensor during the walk: the arena buffer holding it and its shape (batch 1)."""

    buffer: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def estimate_mcu_memory(model: Any, input_shape: tuple[int, ...] | None = None, *,
                        runtime_flash_bytes: int = 0, time_limit_s: float = 1.0) -> MemoryEstimate:
    """Estimate SRAM (planned activations) and flash (constants) of ``model`` as an int8 MCU model.

    Args:
        model: a built Keras 3 Functional or Sequential model.
        input_shape: input shape without batch, for models whose input has unknown dimensions
            (single-input models only); default: the model's own input shape.
        runtime_flash_bytes: added to ``flash_bytes`` (code of the runtime and kernels).
        time_limit_s: planner search time.
    """
    from tinyml_kit.engine.planner import Buffer, Problem, Step, plan

    walker = _Walker(model, input_shape)
    buffers = {name: Buffer(name, size) for name, size in walker.sizes.items()}
    steps = [Step(name, tuple(dict.fromkeys(ins)), tuple(outs)) for name, ins, outs in walker.steps]
    if not steps:
        raise ExportError(f"model '{model.name}' has no layer that becomes an op; nothing to estimate.")
    outputs = tuple(dict.fromkeys(v.buffer for v in walker.outputs))
    used = {b for s in steps for b in (*s.inputs, *s.outputs)} | set(outputs)
    problem = Problem(buffers={k: v for k, v in buffers.items() if k in used}, steps=steps,
                      graph_inputs=tuple(b for b in walker.input_buffers if b in used),
                      graph_outputs=outputs)
    result = plan(problem, time_limit_s=time_limit_s)
    return MemoryEstimate(sram_bytes=int(result.arena_bytes),
                          flash_bytes=walker.weight_bytes + runtime_flash_bytes,
                          weight_bytes=walker.weight_bytes, step_names=[s.name for s in steps], plan=result,
                          problem=problem)


def architecture_key(model: Any) -> tuple:
    """Changes whenever layers or weight shapes change (cheap; used to re-estimate only then)."""
    return tuple((id(layer), type(layer).__name__, tuple(tuple(w.shape) for w in layer.weights))
                 for layer in _all_layers(model))


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


class _Walker:
    """Walks the Keras graph once, collecting buffers, steps and constant bytes."""

    def __init__(self, model: Any, input_shape: tuple[int, ...] | None):
        import keras

        self.keras = keras
        self.sizes: dict[str, int] = {}
        self.steps: list[tuple[str, list[str], list[str]]] = []
        self.weight_bytes = 0
        self.counted: set[int] = set()
        self.consumers = _consumer_classes(model)
        inputs = model_inputs(model)
        shapes = [tuple(t.shape[1:]) for t in inputs]
        self.symbolic = input_shape is not None
        if input_shape is not None:
            if len(inputs) != 1:
                raise ExportError("input_shape= works for single-input models only.")
            shapes = [tuple(input_shape)]
        for shape in shapes:
            if any(d is None for d in shape):
                raise ExportError(f"model '{model.name}' has input shape {shape} with unknown dimensions; "
                                  "pass input_shape=(...) (without batch) to estimate its memory.")
        self.input_buffers = [self._new_buffer(f"input:{_input_name(t)}", (1, *s))
                              for t, s in zip(inputs, shapes, strict=True)]
        values = [_Value(b, (1, *s)) for b, s in zip(self.input_buffers, shapes, strict=True)]
        self.outputs = run_graph(model, values, self._call)

    def _new_buffer(self, name: str, shape: tuple[int, ...]) -> str:
        unique, n = name, 1
        while unique in self.sizes:
            n += 1
            unique = f"{name}#{n}"
        self.sizes[unique] = int(np.prod(shape, dtype=np.int64))
        return unique

    def _call(self, layer: Any, args: tuple, kwargs: dict, recorded: list) -> list[_Value]:
        keras = self.keras
        flat_in = [v for v in keras.tree.flatten((args, kwargs)) if isinstance(v, _Value)]
        shapes = self._output_shapes(layer, args, kwargs, recorded)
        class_name = keras3_class_name(layer) or type(layer).__name__
        self._count_weights(layer, class_name)
        consumers = self.consumers.get(id(layer), set())
        fused_pad = class_name == "ZeroPadding2D" and consumers and consumers <= PAD_FUSING_CONSUMERS
        if class_name in ALIAS_LAYERS or self._fused_activation(layer, class_name) or fused_pad:
            return [_Value(flat_in[0].buffer, shapes[0])]
        ins = [v.buffer for v in flat_in]
        name = layer.name
        if class_name.startswith("SeparableConv"):  # TFLite: DEPTHWISE_CONV_2D then CONV_2D (1x1)
            mid_shape = (*shapes[0][:-1], flat_in[0].shape[-1] * int(getattr(layer, "depth_multiplier", 1)))
            mid = self._new_buffer(f"{layer.name}/depthwise", mid_shape)
            self.steps.append((f"{layer.name}/depthwise", ins, [mid]))
            ins, name = [mid], f"{layer.name}/pointwise"
        outs = [_Value(self._new_buffer(layer.name, shape), shape) for shape in shapes]
        self.steps.append((name, ins, [v.buffer for v in outs]))
        activation = _activation_name(layer)
        if class_name in WEIGHTED_LAYERS and activation not in FUSED_ACTIVATIONS:
            act = _Value(self._new_buffer(f"{layer.name}/{activation}", shapes[0]), shapes[0])
            self.steps.append((f"{layer.name}/{activation}", [outs[0].buffer], [act.buffer]))
            outs = [act]
        return outs

    def _fused_activation(self, layer: Any, class_name: str) -> bool:
        if class_name == "ReLU":
            return layer.negative_slope == 0 and layer.threshold == 0
        return class_name == "Activation" and _activation_name(layer) in FUSED_ACTIVATIONS

    def _output_shapes(self, layer: Any, args: tuple, kwargs: dict, recorded: list) -> list[tuple[int, ...]]:
        keras = self.keras
        if not self.symbolic:
            return [(1, *tuple(t.shape[1:])) for t in recorded]
        def symbolic(v: Any) -> Any:
            return keras.KerasTensor(v.shape, dtype="float32") if isinstance(v, _Value) else v

        sym = keras.tree.map_structure(symbolic, (args, kwargs))
        spec = layer.compute_output_spec(*sym[0], **sym[1])
        return [tuple(t.shape) for t in keras.tree.flatten(spec)]

    def _count_weights(self, layer: Any, class_name: str) -> None:
        if id(layer) in self.counted:
            return  # shared layers store their weights once
        self.counted.add(id(layer))
        weights = list(layer.weights)
        if class_name == "BatchNormalization":
            return  # folded into the convolution (its bias is counted there)
        if class_name in WEIGHTED_LAYERS:
            kernels = [w for w in weights if len(w.shape) >= 2]
            channels = int(kernels[-1].shape[-1]) if kernels else 0
            if class_name.startswith("Depthwise"):
                channels = int(np.prod(kernels[-1].shape[-2:])) if kernels else 0
            self.weight_bytes += sum(int(np.prod(w.shape)) for w in kernels)
            self.weight_bytes += channels * (4 + REQUANT_BYTES_PER_CHANNEL)
            if class_name.startswith("Separable") and kernels:
                dw_channels = int(np.prod(kernels[0].shape[-2:]))
                self.weight_bytes += dw_channels * (4 + REQUANT_BYTES_PER_CHANNEL)
            return
        self.weight_bytes += sum(int(np.prod(w.shape)) for w in weights)  # other constants as int8


def _input_name(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    return history.operation.name if history and history.operation is not None else tensor.name


def _activation_name(layer: Any) -> str:
    import keras

    fn = getattr(layer, "activation", None)
    if fn is None:
        return "linear"
    name = keras.activations.serialize(fn)
    return name if isinstance(name, str) else "custom"


def _consumer_classes(model: Any) -> dict[int, set[str]]:
    """Class names of the layers consuming each layer's output (for pad fusion)."""
    producers: dict[int, Any] = {}
    consumers: dict[int, set[str]] = {}

    def record(layer: Any, args: tuple, kwargs: dict, recorded: list) -> list:
        import keras

        for value in keras.tree.flatten((args, kwargs)):
            producer = producers.get(id(value))
            if producer is not None:
                name = keras3_class_name(layer) or type(layer).__name__
                consumers.setdefault(id(producer), set()).add(name)
        for tensor in recorded:
            producers[id(tensor)] = layer
        return recorded

    run_graph(model, model_inputs(model), record)
    return consumers
