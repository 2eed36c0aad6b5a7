"""Walk a Keras 3 Functional or Sequential model layer call by layer call, in execution order.

Keras 3 has no public API for a model's node graph, so this module is the one place that reads its
private structure (``Functional._nodes_by_depth``, ``Node.arguments``), as ``Functional.call`` itself
does. Nested Functional/Sequential models are inlined, so callers see only leaf layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinyml_kit.export.errors import ExportError

# call_layer(layer, args, kwargs, recorded) -> outputs (one value or a list/tuple of values). ``args`` and
# ``kwargs`` hold the caller's values where the Keras call had tensors; ``recorded`` are the KerasTensors
# Keras recorded as that call's outputs (for their shapes and dtypes).
LayerCallFn = Callable[[Any, tuple, dict, list], Any]


def as_functional(model: Any) -> Any:
    """The Functional graph behind ``model`` (itself, or a built Sequential's inner graph)."""
    import keras

    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ExportError(
                f"Sequential model '{model.name}' has no layer graph yet: give it an input shape "
                "(`keras.Input(shape=...)` as first layer, or call `model.build((None, ...))`)."
            )
        return functional
    if not hasattr(model, "_nodes_by_depth"):
        raise ExportError(
            f"model '{getattr(model, 'name', model)}' ({type(model).__name__}) is a subclassed Keras model: "
            "it has no layer graph to walk. Build it with the functional API or keras.Sequential."
        )
    return model


def is_graph_model(layer: Any) -> bool:
    """True for nested Functional/Sequential models (they are inlined, not treated as layers)."""
    import keras

    return isinstance(layer, keras.Model) and (
        isinstance(layer, keras.Sequential) or hasattr(layer, "_nodes_by_depth")
    )


def model_inputs(model: Any) -> list[Any]:
    """The model's input KerasTensors, flattened."""
    import keras

    return keras.tree.flatten(as_functional(model).inputs)


def run_graph(model: Any, inputs: Sequence[Any], call_layer: LayerCallFn) -> list[Any]:
    """Evaluate ``model``'s graph on arbitrary values by calling ``call_layer`` for every leaf layer call.

    ``inputs`` are the values standing for the model's (flattened) inputs; the result holds the values
    of its (flattened) outputs. Layers run in topological order; nested models are inlined.
    """
    import keras

    functional = as_functional(model)
    graph_inputs = keras.tree.flatten(functional.inputs)
    if len(inputs) != len(graph_inputs):
        raise ExportError(f"model '{functional.name}' has {len(graph_inputs)} input(s), got {len(inputs)}.")
    values: dict[int, Any] = {id(t): v for t, v in zip(graph_inputs, inputs, strict=True)}
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            if node.is_input or node.operation is None:
                continue
            if any(id(t) not in values for t in node.input_tensors):
                continue  # not on a path from the inputs (Keras skips these too)
            args, kwargs = node.arguments.fill_in(values)
            layer = node.operation
            if is_graph_model(layer):
                nested_inputs = keras.tree.flatten(args[0] if args else next(iter(kwargs.values())))
                outputs = run_graph(layer, nested_inputs, call_layer)
            else:
                outputs = keras.tree.flatten(call_layer(layer, args, kwargs, list(node.outputs)))
            if len(outputs) != len(node.outputs):
                raise ExportError(
                    f"layer '{layer.name}' ({type(layer).__name__}) produced {len(outputs)} output(s), "
                    f"the Keras graph expects {len(node.outputs)}."
                )
            for tensor, value in zip(node.outputs, outputs, strict=True):
                values[id(tensor)] = value
    missing = [t for t in keras.tree.flatten(functional.outputs) if id(t) not in values]
    if missing:
        raise ExportError(f"model '{functional.name}': an output is not connected to its inputs.")
    return [values[id(t)] for t in keras.tree.flatten(functional.outputs)]

