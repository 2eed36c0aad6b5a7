"""tinyml-kit: MIT HAN Lab's tiny-ML systems for Keras and TensorFlow Lite Micro.

Subpackages are imported on demand so that ``import tinyml_kit`` (and the CLI) stay fast:
``tinyml_kit.engine`` (TinyEngine), ``tinyml_kit.data``, ``tinyml_kit.zoo``, ``tinyml_kit.export``,
``tinyml_kit.tinynas``, ``tinyml_kit.tinytl``, ``tinyml_kit.diffaug``, ``tinyml_kit.spvnas`` and
``tinyml_kit.circuits``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
