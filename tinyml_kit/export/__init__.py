"""Keras 3 model -> int8 .tflite: post-training quantisation, QAT through a tf_keras bridge, LiteRT
checks, and a conversion-free estimate of a model's int8 SRAM/flash on a microcontroller.

Everything heavy (TensorFlow, Keras, tfmot) is imported inside the functions, so importing this
package is cheap.
"""

from tinyml_kit.export.bridge import SUPPORTED_LAYERS, to_tf_keras
from tinyml_kit.export.errors import ExportError, UnsupportedLayerError
from tinyml_kit.export.estimate import MemoryEstimate, estimate_mcu_memory
from tinyml_kit.export.litert import evaluate_tflite, predict_tflite, quantize_input
from tinyml_kit.export.qat import QATModel, quantize_aware
from tinyml_kit.export.tflite import to_tflite

__all__ = [
    "SUPPORTED_LAYERS",
    "ExportError",
    "MemoryEstimate",
    "QATModel",
    "UnsupportedLayerError",
    "estimate_mcu_memory",
    "evaluate_tflite",
    "predict_tflite",
    "quantize_aware",
    "quantize_input",
    "to_tf_keras",
    "to_tflite",
]
