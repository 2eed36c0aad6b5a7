"""TinyTL (Cai et al., NeurIPS 2020): memory-efficient on-device transfer learning for Keras 3.

Training memory is dominated by activations, and only weight gradients need them: freeze the
weights, train biases and small *lite residual* branches, and the backward pass can drop most
activations. :func:`prepare` builds such a model from a pretrained CNN and makes the saving real
on the TensorFlow backend (lean gradients, frozen norms folded); :func:`training_memory` is the
paper's cost model; :class:`TrainingMemoryMonitor` logs modelled and measured memory during ``fit``.

>>> from tinyml_kit import tinytl, zoo
>>> backbone = zoo.mobilenet_v2((96, 96, 3))                                  # doctest: +SKIP
>>> model = tinytl.prepare(backbone, "lite_residual+bias", num_classes=10)    # doctest: +SKIP
>>> tinytl.training_memory(backbone, "bias", batch_size=8, num_classes=10)["total"]  # doctest: +SKIP

Names resolve lazily, so ``import tinyml_kit.tinytl.cli`` (for ``tinyml-kit --help``) does not import
Keras or TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyml_kit._lazy import lazy_attributes

if TYPE_CHECKING:
    from tinyml_kit.tinytl.backbones import BACKBONES, build_backbone
    from tinyml_kit.tinytl.callbacks import StepTimer, TrainingMemoryMonitor
    from tinyml_kit.tinytl.errors import TinyTLError, UnknownMethodError, UnsupportedArchitectureError
    from tinyml_kit.tinytl.graph import find_inverted_residual_blocks
    from tinyml_kit.tinytl.lean_layers import (
        FrozenBatchNormalization,
        LeanConv2D,
        LeanDense,
        LeanDepthwiseConv2D,
        LeanReLU,
    )
    from tinyml_kit.tinytl.lite_residual import GroupConv2D, LiteResidual
    from tinyml_kit.tinytl.measure import (
        MemoryMeasurement,
        compile_for_measurement,
        measure_in_subprocess,
        measure_training_step,
    )
    from tinyml_kit.tinytl.memory_model import MB, PUBLISHED_MB, plot_training_memory, training_memory
    from tinyml_kit.tinytl.methods import METHODS, Method, get_method
    from tinyml_kit.tinytl.train import load_transfer_data, run_transfer
    from tinyml_kit.tinytl.transform import apply_method, prepare

_EXPORTS = {
    "BACKBONES": "backbones",
    "build_backbone": "backbones",
    "StepTimer": "callbacks",
    "Deployment": "deploy",
    "DeploymentError": "deploy",
    "check_bit_exact": "deploy",
    "check_deployable": "deploy",
    "deploy": "deploy",
    "export_int8": "deploy",
    "TrainingMemoryMonitor": "callbacks",
    "TinyTLError": "errors",
    "UnknownMethodError": "errors",
    "UnsupportedArchitectureError": "errors",
    "find_inverted_residual_blocks": "graph",
    "FrozenBatchNormalization": "lean_layers",
    "LeanConv2D": "lean_layers",
    "LeanDense": "lean_layers",
    "LeanDepthwiseConv2D": "lean_layers",
    "LeanReLU": "lean_layers",
    "GroupConv2D": "lite_residual",
    "LiteResidual": "lite_residual",
    "MemoryMeasurement": "measure",
    "compile_for_measurement": "measure",
    "measure_in_subprocess": "measure",
    "measure_training_step": "measure",
    "MB": "memory_model",
    "PUBLISHED_MB": "memory_model",
    "plot_training_memory": "memory_model",
    "training_memory": "memory_model",
    "METHODS": "methods",
    "Method": "methods",
    "get_method": "methods",
    "apply_method": "transform",
    "prepare": "transform",
    "load_transfer_data": "train",
    "run_transfer": "train",
}

__all__ = [
    "BACKBONES",
    "MB",
    "METHODS",
    "PUBLISHED_MB",
    "Deployment",
    "DeploymentError",
    "FrozenBatchNormalization",
    "GroupConv2D",
    "LeanConv2D",
    "LeanDense",
    "LeanDepthwiseConv2D",
    "LeanReLU",
    "LiteResidual",
    "MemoryMeasurement",
    "Method",
    "StepTimer",
    "TinyTLError",
    "TrainingMemoryMonitor",
    "UnknownMethodError",
    "UnsupportedArchitectureError",
    "apply_method",
    "build_backbone",
    "check_bit_exact",
    "check_deployable",
    "compile_for_measurement",
    "deploy",
    "export_int8",
    "find_inverted_residual_blocks",
    "get_method",
    "load_transfer_data",
    "measure_in_subprocess",
    "measure_training_step",
    "plot_training_memory",
    "prepare",
    "run_transfer",
    "training_memory",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)
