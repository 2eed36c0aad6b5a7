"""The six transfer-learning methods of TinyTL's Table 2 and what each one trains.

Kept free of Keras so that the CLI can list the methods without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyml_kit.tinytl.errors import UnknownMethodError


@dataclass(frozen=True)
class Method:
    """What one transfer-learning method updates (the new classifier always trains).

    Attributes:
        name: the method name accepted by ``prepare`` / ``training_memory``.
        paper_name: the row label in TinyTL's Table 2.
        kernels: convolution / dense kernels of the backbone.
        norm_scales: scale (gamma) of every normalisation layer of the backbone.
        biases: every bias: normalisation offsets (beta) and conv / dense biases.
        lite_residual: attach lite residual branches and train them.
        description: one line for help texts and tables.
    """

    name: str
    paper_name: str
    kernels: bool
    norm_scales: bool
    biases: bool
    lite_residual: bool
    description: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("last", "FT-Last", False, False, False, False, "train the new classifier only"),
        Method("norm+last", "FT-Norm+Last", False, True, True, False,
               "train normalisation scales and offsets and the classifier"),
        Method("bias", "TinyTL-B", False, False, True, False,
               "train biases (normalisation offsets) and the classifier"),
        Method("lite_residual", "TinyTL-L", False, False, False, True,
               "attach lite residual branches and train them with the classifier"),
        Method("lite_residual+bias", "TinyTL-L+B", False, False, True, True,
               "lite residual branches, biases and the classifier"),
        Method("full", "FT-Full", True, True, True, False, "fine-tune every weight"),
    )
}  # fmt: skip


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name`` (raises :class:`UnknownMethodError` listing the valid names)."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise UnknownMethodError(
            f"unknown TinyTL method {name!r}; valid methods: {', '.join(METHODS)}"
        ) from None
