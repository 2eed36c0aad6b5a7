"""A batch-norm TinyTL model exports to int8 TFLite and runs bit-exactly on tinyml-kit's engine."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from tk_testing import require_tool

from tinyml_kit.engine.reader import read_tflite
from tinyml_kit.tinytl import prepare
from tinyml_kit.tinytl.deploy import Deployment, DeploymentError, check_bit_exact, deploy
from tinyml_kit.tinytl.lite_residual import LiteResidual
from tinyml_kit.zoo import proxylessnas_mobile

sys.path.insert(0, str(Path(__file__).parent))
from test_tinytl_prepare import mcunet_like

SIZE = 32


def _prepared(backbone: keras.Model, upsample: str = "bilinear", norm: str = "batch") -> keras.Model:
    """A TinyTL model whose (zero-initialised) branches contribute, as after training."""
    keras.utils.set_random_seed(0)
    model = prepare(backbone, "lite_residual+bias", 4, norm=norm, upsample=upsample)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, LiteResidual):
            layer.norm2.gamma.assign(rng.normal(0, 0.5, layer.norm2.gamma.shape).astype("float32"))
    return model


def _calibration(size: int, count: int = 32) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (count, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    require_tool("gcc")
    model = _prepared(mcunet_like((SIZE, SIZE, 3)))
    return deploy(model, _calibration(SIZE), tmp_path_factory.mktemp("tinytl_deploy"), check_samples=6)


def test_int8_export_uses_only_these_ops(deployment: Deployment) -> None:
    """Batch norms fold into the convolutions; the branches add grouped CONV_2D and a resize."""
    graph = read_tflite(deployment.tflite)
    ops = collections.Counter(op.type for op in graph.ops)
    assert set(ops) == {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESIZE_BILINEAR", "MEAN",
                        "FULLY_CONNECTED", "SOFTMAX"}  # fmt: skip
    assert ops["RESIZE_BILINEAR"] == 3
    resize = next(op for op in graph.ops if op.type == "RESIZE_BILINEAR")
    assert resize.options["half_pixel_centers"] and not resize.options["align_corners"]
    convs = [op for op in graph.ops if op.type == "CONV_2D"]
    t = graph.tensors
    channels = [(t[op.inputs[0]].shape[-1], t[op.inputs[1]].shape[-1]) for op in convs]
    grouped = [pair for pair in channels if pair[0] != pair[1]]
    assert len(grouped) == 3 and all(c_in == 2 * depth for c_in, depth in grouped)  # groups=2 per branch


def test_deploy_compiles_bit_exactly_on_host(deployment: Deployment) -> None:
    """deploy() checked 6 random int8 inputs against TFLM; the branch ops use their own kernels."""
    assert deployment.reference == "tflm" and deployment.checked_samples == 6
    functions = collections.Counter(c.function for c in deployment.project.calls)
    assert functions["tk_resize_bilinear_s8"] == 3
    assert sorted(c.params["groups"] for c in deployment.project.calls if c.function == "tk_conv2d_s8"
                  and c.params["groups"] > 1) == [2, 2, 2]
    assert 0 < deployment.peak_sram_bytes < 3 * SIZE * SIZE * 16  # a few int8 feature maps, no float


class _OffByOne:
    """A project whose first output value is one higher than the real project's."""

    def __init__(self, project) -> None:
        self.project = project

    def run_many(self, samples):
        outputs = self.project.run_many(samples)
        outputs[0][0].reshape(-1)[0] += 1
        return outputs


def test_bit_exact_check_detects_a_difference(deployment: Deployment) -> None:
    with pytest.raises(DeploymentError, match="differ from tflm's on 1 of 2 random inputs"):
        check_bit_exact(deployment.tflite, _OffByOne(deployment.project), samples=2)


def test_group_norm_model_is_refused_before_export(tmp_path: Path) -> None:
    model = prepare(mcunet_like((SIZE, SIZE, 3)), "lite_residual", 4, norm="group")
    with pytest.raises(DeploymentError, match=r"group normalisation.*norm='batch'"):
        deploy(model, _calibration(SIZE, 4), tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_proxylessnas_64px_deploys_bit_exactly(tmp_path: Path) -> None:
    """A ProxylessNAS-Mobile backbone at 64x64 (every branch kernel size and stride it uses)."""
    require_tool("gcc")
    model = _prepared(proxylessnas_mobile((64, 64, 3), 10, width_mult=0.35))
    result = deploy(model, _calibration(64), tmp_path, check_samples=8)
    assert result.reference == "tflm"


@pytest.mark.slow
def test_nearest_upsampling_deploys_bit_exactly(tmp_path: Path) -> None:
    require_tool("gcc")
    model = _prepared(mcunet_like((SIZE, SIZE, 3)), upsample="nearest")
    result = deploy(model, _calibration(SIZE), tmp_path, check_samples=8)
    assert "tk_resize_nn_s8" in {c.function for c in result.project.calls}


@pytest.mark.slow
@pytest.mark.qemu
def test_deploys_bit_exactly_on_cortex_m4(tmp_path: Path) -> None:
    for tool in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    model = _prepared(mcunet_like((SIZE, SIZE, 3)))
    result = deploy(model, _calibration(SIZE), tmp_path, target="cortex-m4", check_samples=5)
    assert result.reference == "tflm" and result.project.target == "cortex-m4"
