"""The engine end to end: compile, build and run models, bit-exact against TFLM (tflite-micro pip).

References run in a subprocess (``tinyml_kit.engine.tflm``). The default tier covers the three TFLM
reference models on the host and on QEMU (Cortex-M4) and a sweep of converter-generated single-op
models on the host; the slow tier repeats the sweep on QEMU and runs the shared models under
AddressSanitizer/UBSan.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tk_testing import require_tool

from tinyml_kit.engine import codegen, modelgen, tflm
from tinyml_kit.engine.errors import BuildError, EngineError, RunError
from tinyml_kit.engine.lowering import KernelCall
from tinyml_kit.engine.lowering.common import Window, elementwise_max_shift, window_max_shift
from tinyml_kit.engine.planner import check_plan
from tinyml_kit.engine.project import Project, build_problem, compile

TFLM_PERSON_DETECT_ARENA = 85_264  # /work/shared/models/README.md
MY_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "SOFTMAX", "RESHAPE",
          "SQUEEZE", "QUANTIZE", "DEQUANTIZE", "PAD"}


def _random(project: Project, n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        sample = []
        for d in project.input_details:
            if d["dtype"] == "float32":
                sample.append(rng.uniform(-1.0, 1.0, size=d["shape"]).astype(np.float32))
            else:
                sample.append(rng.integers(-128, 128, size=d["shape"]).astype(np.int8))
        samples.append(sample)
    return samples


def assert_bitexact(project: Project, model: Path, samples: list[list[np.ndarray]],
                    target: str | None = None, **run_kw) -> list[list[np.ndarray]]:
    ours = project.run_many(samples, target=target, **run_kw)
    ref = tflm.run(model, samples)
    assert len(ours) == len(ref) == len(samples)
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        b = list(b) if isinstance(b, tuple) else [b]
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert x.dtype == y.dtype, f"sample {i} output {k}: dtype {x.dtype} vs TFLM {y.dtype}"
            np.testing.assert_array_equal(x.reshape(-1), np.asarray(y).reshape(-1),
                                          err_msg=f"{model.name} sample {i} output {k} differs from TFLM")
    return ours


def _bmp_as_input(path: Path, *, centred: bool = False) -> np.ndarray:
    """The 96x96 grayscale image as the model's int8 input.

    TFLM's person_detection_test memcpy's the BMP's pixel bytes (generate_cc_arrays.py:
    ``Image.tobytes()``) into the int8 input, i.e. reinterprets them; ``centred`` instead subtracts 128.
    """
    from PIL import Image

    pixels = np.frombuffer(Image.open(path).tobytes(), dtype=np.uint8)
    values = (pixels.astype(np.int16) - 128).astype(np.int8) if centred else pixels.view(np.int8)
    return values.reshape(1, 96, 96, 1)


@pytest.fixture(scope="session")
def engine_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine_core")


@pytest.fixture(scope="session")
def shared_projects(shared_models: Path, engine_tmp: Path) -> dict[str, Project]:
    require_tool("gcc")
    names = ("person_detect", "micro_speech_quantized", "hello_world_int8")
    return {n: compile(shared_models / f"{n}.tflite", engine_tmp / "shared" / n) for n in names}


# --- the TFLM reference models -----------------------------------------------------------------------


def _person_samples(shared_models: Path, project: Project, n_random: int) -> list[list[np.ndarray]]:
    files = ("person.bmp", "no_person.bmp")
    images = [[_bmp_as_input(shared_models / f)] for f in files]
    centred = [[_bmp_as_input(shared_models / f, centred=True)] for f in files]
    return images + centred + _random(project, n_random, seed=1)


def _check_person_scores(outputs: list[list[np.ndarray]]) -> None:
    person, no_person = outputs[0][0].reshape(-1), outputs[1][0].reshape(-1)
    assert person[1] > person[0], f"person.bmp scores {person} (TFLM: person index 1 wins)"
    assert no_person[0] > no_person[1], f"no_person.bmp scores {no_person}"


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m4", marks=pytest.mark.qemu)])
def test_person_detect_bitexact(shared_models: Path, shared_projects: dict[str, Project],
                                target: str) -> None:
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        require_tool("qemu-system-arm")
    project = shared_projects["person_detect"]
    samples = _person_samples(shared_models, project, 20)
    outputs = assert_bitexact(project, shared_models / "person_detect.tflite", samples, target=target)
    _check_person_scores(outputs)
    if target == "cortex-m4":
        assert project.last_instructions and 1e6 < project.last_instructions < 2e8


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m4", marks=pytest.mark.qemu)])
@pytest.mark.parametrize("name", ["micro_speech_quantized", "hello_world_int8"])
def test_small_reference_models_bitexact(shared_models: Path, shared_projects: dict[str, Project],
                                         name: str, target: str) -> None:
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        require_tool("qemu-system-arm")
    project = shared_projects[name]
    if name == "hello_world_int8":  # every possible input value
        samples = [[np.array([[v]], dtype=np.int8)] for v in range(-128, 128)]
    else:
        samples = _random(project, 20, seed=2)
    assert_bitexact(project, shared_models / f"{name}.tflite", samples, target=target)


def test_person_detect_arena_uses_overlaps(shared_projects: dict[str, Project]) -> None:
    project = shared_projects["person_detect"]
    assert project.peak_sram_bytes <= 0.6 * TFLM_PERSON_DETECT_ARENA
    assert project.lower_bound_bytes <= project.peak_sram_bytes
    check_plan(build_problem(project.graph, [project.calls[i] for i in np.argsort(project.plan.order)]),
               project.plan)
    assert project.plan.overlapping, "no in-place placement: the overlap rules are not used"
    in_place = [c for c in project.calls if c.kernel in ("tk_dwconv2d", "tk_dwconv2d_ch")
                and project.plan.offsets[f"t{c.outputs[0]}"] == project.plan.offsets[f"t{c.inputs[0]}"]]
    assert in_place, "the channel-wise in-place depthwise variant (shift 0) is never used"
    model_c = (project.out_dir / "model.c").read_text()
    header = (project.out_dir / "model.h").read_text()
    assert f"#define TK_PEAK_SRAM_BYTES {project.peak_sram_bytes}\n" in header
    assert f"static int8_t tk_arena[{project.peak_sram_bytes}]" in model_c


def test_project_only_carries_used_kernels(shared_projects: dict[str, Project]) -> None:
    kernels = {p.name for p in (shared_projects["hello_world_int8"].out_dir / "kernels").iterdir()}
    assert kernels == {"tk_common.h", "tk_simd.h", "tk_fc.c", "tk_fc.h"}
    assert shared_projects["hello_world_int8"].flash_bytes == 16 + 16 * 4 * 3 + 256 + 16 * 4 * 3 + 16 + 4 * 3


# --- project handling ----------------------------------------------------------------------------------


def test_recompile_is_idempotent_and_build_is_cached(shared_models: Path, engine_tmp: Path) -> None:
    out = engine_tmp / "idem"
    first = compile(shared_models / "hello_world_int8.tflite", out)
    binary = first.build()
    stamp = binary.stat().st_mtime_ns
    texts = {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".c", ".h", ".json")}
    second = compile(shared_models / "hello_world_int8.tflite", out)
    assert {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".c", ".h", ".json")} == texts
    assert second.build().stat().st_mtime_ns == stamp  # unchanged sources: no rebuild
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".idem")]  # no temp dirs left

    reopened = Project.load(out)
    assert reopened.peak_sram_bytes == first.peak_sram_bytes and reopened.plan.order == first.plan.order
    x = np.array([[10]], dtype=np.int8)
    np.testing.assert_array_equal(reopened.run(x)[0], first.run(x)[0])
    assert [c.kernel for c in reopened.calls] == ["tk_fc"] * 3
    # float32 input is quantised with the input scale and zero point
    d = first.input_details[0]
    as_float = np.array([[(10 - d["zero_point"]) * d["scale"]]], dtype=np.float32)
    np.testing.assert_array_equal(first.run(as_float)[0], first.run(x)[0])


def test_relative_project_dir_builds_and_runs(shared_models: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    project = compile(shared_models / "hello_world_int8.tflite", "relative/project")
    assert project.out_dir == tmp_path / "relative" / "project"
    x = np.array([[10]], dtype=np.int8)
    assert project.run(x)[0].shape == (1, 1)
    monkeypatch.chdir(shared_models)  # another working directory: the project still runs
    reopened = Project.load(tmp_path / "relative" / "project")
    np.testing.assert_array_equal(reopened.run(x)[0], project.run(x)[0])


def test_run_errors_name_the_problem(shared_projects: dict[str, Project], engine_tmp: Path) -> None:
    project = shared_projects["hello_world_int8"]
    with pytest.raises(RunError, match="needs 1 values"):
        project.run(np.zeros((1, 3), dtype=np.int8))
    with pytest.raises(RunError, match="got a int32 array"):
        project.run(np.zeros((1, 1), dtype=np.int32))
    with pytest.raises(EngineError, match=r"no manifest\.json"):
        Project.load(engine_tmp)


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m4", marks=pytest.mark.qemu)])
def test_firmware_exit_status_reports_bad_input(shared_projects: dict[str, Project], tmp_path: Path,
                                                target: str) -> None:
    """A truncated sample makes the harness exit with status 2 (semihosting SYS_EXIT_EXTENDED on QEMU)."""
    import subprocess

    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        qemu = require_tool("qemu-system-arm")
    project = shared_projects["micro_speech_quantized"]
    binary = project.build(target)
    (tmp_path / "input.bin").write_bytes(bytes(100))  # the model needs 1960 bytes per sample
    cmd = [str(binary), "input.bin", "output.bin"] if target == "host" else [
        qemu, "-M", "mps2-an386", "-nographic", "-monitor", "none", "-semihosting-config",
        "enable=on,target=native", "-icount", "shift=0", "-kernel", str(binary)]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "not a whole number of samples" in result.stdout + result.stderr


def test_broken_source_raises_build_error_with_compiler_output(shared_models: Path, engine_tmp: Path) -> None:
    out = engine_tmp / "broken"
    project = compile(shared_models / "hello_world_int8.tflite", out)
    model_c = out / "model.c"
    model_c.write_text(model_c.read_text() + "\nthis is not C;\n")
    with pytest.raises(BuildError, match=r"model\.c"):
        project.build()


def test_bad_target_is_refused(shared_models: Path, engine_tmp: Path) -> None:
    with pytest.raises(EngineError, match="Expected target in"):
        compile(shared_models / "hello_world_int8.tflite", engine_tmp / "bad", target="riscv")


# --- codegen units -------------------------------------------------------------------------------------


def _fake_call() -> KernelCall:
    from tinyml_kit.engine.ir import Op

    return KernelCall(op=Op(index=7, type="SOFTMAX", inputs=[1], outputs=[2]), kernel="tk_softmax",
                      function="tk_softmax_s8", params_type="tk_softmax_params_t",
                      params={"rows": 1, "depth": 10, "input_multiplier": 1 << 30, "input_left_shift": 3,
                              "diff_min": -(2 ** 31)},
                      inputs=[1], outputs=[2])


def test_render_params_golden() -> None:
    text = codegen.render_params(_fake_call(), 0, inplace=False)
    assert text == (
        "static const tk_softmax_params_t op7_params = {\n"
        "    .rows = 1,\n    .depth = 10,\n    .input_multiplier = 1073741824,\n"
        "    .input_left_shift = 3,\n    .diff_min = (-2147483647 - 1),\n};\n"
    )


def test_c_literals_are_exact() -> None:
    assert codegen.c_literal(0.00390625) == "0x1.0000000000000p-8f"
    assert float.fromhex(codegen.c_literal(float(np.float32(0.1)))[:-1]) == float(np.float32(0.1))
    assert codegen.c_literal([1, -2]) == "{1, -2}"
    with pytest.raises(EngineError, match="float32"):
        codegen.c_literal(0.1)  # not a float32 value: would silently change
    arr = codegen.c_array("w", np.arange(-3, 3, dtype=np.int8))
    assert arr == "static const int8_t w[6] TK_ALIGN(4) = {\n    -3, -2, -1, 0, 1, 2\n};\n"


def test_kernel_header_mismatch_is_caught_before_c_compilation() -> None:
    call = _fake_call()
    call.params["no_such_field"] = 1
    header = (codegen.firmware_dir() / "kernels" / "tk_softmax.h").read_text()
    with pytest.raises(EngineError, match="does not declare no_such_field"):
        codegen.check_kernel_header(call, header)


def test_manifest_is_json_with_figures(shared_projects: dict[str, Project]) -> None:
    project = shared_projects["micro_speech_quantized"]
    manifest = json.loads((project.out_dir / "manifest.json").read_text())
    assert manifest["peak_sram_bytes"] == project.peak_sram_bytes
    assert [c["kernel"] for c in manifest["calls"]] == ["tk_conv2d_gemm", "tk_fc", "tk_softmax"]
    assert manifest["inputs"][0]["shape"] == [1, 1960]


# --- overlap rules: a simulated in-place run must never read a byte it already overwrote -----------------


def _simulate(win: Window, cin: int, cout: int, shift: int, staged: bool) -> bool:
    """True when writing outputs at ``shift`` never clobbers an input byte that is read later."""
    in_base = max(0, -shift) + 8
    out_base = in_base + shift
    clobbered = np.zeros(in_base + win.in_h * win.in_w * cin + win.out_h * win.out_w * cout + 64, bool)

    def reads(oy: int, ox: int, channels: range) -> list[int]:
        addrs = []
        for ky in range(win.k_h):
            iy = oy * win.stride_h - win.pad_top + ky * win.dilation_h
            for kx in range(win.k_w):
                ix = ox * win.stride_w - win.pad_left + kx * win.dilation_w
                if 0 <= iy < win.in_h and 0 <= ix < win.in_w:
                    addrs += [in_base + (iy * win.in_w + ix) * cin + c for c in channels]
        return addrs

    mult = cout // cin
    for oy in range(win.out_h):
        for ox in range(win.out_w):
            pixel_out = out_base + (oy * win.out_w + ox) * cout
            groups = [(range(cin), range(cout))] if staged else \
                [(range(c, c + 1), range(c * mult, (c + 1) * mult)) for c in range(cin)]
            for read_channels, write_channels in groups:
                if any(clobbered[a] for a in reads(oy, ox, read_channels)):
                    return False
                for c in write_channels:
                    clobbered[pixel_out + c] = True
    return True


_WINDOW_CASES = [
    ((6, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1), 3, 5),   # 3x3 SAME
    ((7, 7, 3, 3, 3, 3, 2, 2, 1, 1, 0, 0), 4, 4),   # 3x3 stride 2 VALID
    ((5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0), 8, 3),   # 1x1 shrinking
    ((5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0), 2, 6),   # 1x1 growing
    ((9, 9, 5, 5, 3, 3, 1, 1, 2, 2, 0, 0), 2, 2),   # dilation 2
]


# Interleaved kernels (depthwise, pooling) map input channel c to outputs c*m..c*m+m-1, so they only
# exist where cout is a multiple of cin; staged kernels (conv) take every geometry.
@pytest.mark.parametrize(("geometry", "cin", "cout", "staged"),
                         [(*case, True) for case in _WINDOW_CASES]
                         + [(*case, False) for case in _WINDOW_CASES if case[2] % case[1] == 0])
def test_window_max_shift_is_safe_and_staged_is_tight(geometry, cin: int, cout: int, staged: bool) -> None:
    win = Window(*geometry)
    bound = window_max_shift(win, cin, cout, staged=staged)
    assert _simulate(win, cin, cout, bound, staged)
    assert _simulate(win, cin, cout, bound - 5, staged)
    if staged:
        assert not _simulate(win, cin, cout, bound + 1, staged)


def test_elementwise_max_shift() -> None:
    assert elementwise_max_shift(10, 1, 1) == 0
    assert elementwise_max_shift(10, 4, 1) == 3  # float32 -> int8
    assert elementwise_max_shift(10, 1, 4) == -27  # int8 -> float32 written in order
    assert elementwise_max_shift(1, 4, 1) == 4


# --- converter-generated single-op models ------------------------------------------------------------------


SWEEP = [n for n in modelgen.op_cases() if set(modelgen.CASES[n].ops) <= MY_OPS]


@pytest.fixture(scope="session")
def modelgen_dir(engine_tmp: Path) -> Path:
    return engine_tmp / "modelgen"


def _sweep_case(name: str, modelgen_dir: Path, engine_tmp: Path, target: str) -> None:
    path = modelgen.generate(name, modelgen_dir)
    project = compile(path, engine_tmp / f"sweep-{target}" / name, target=target)
    assert_bitexact(project, path, _random(project, 4, seed=3), target=target)


# The default tier runs every op case on the host in test_engine_bitexact.py (20 inputs each); this
# 4-input repeat of the same sweep only runs in the slow tier.
@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEP)
def test_generated_op_models_bitexact_host(name: str, modelgen_dir: Path, engine_tmp: Path) -> None:
    require_tool("gcc")
    _sweep_case(name, modelgen_dir, engine_tmp, "host")


@pytest.mark.parametrize("name", modelgen.unsupported_cases())
def test_float_and_hybrid_models_are_refused(name: str, modelgen_dir: Path, engine_tmp: Path) -> None:
    from tinyml_kit.engine.errors import UnsupportedOpError

    path = modelgen.generate(name, modelgen_dir)
    kind = "hybrid" if "dynamic" in name else "float"
    with pytest.raises(UnsupportedOpError, match=rf"{path.name}: op #\d+ \(\w+\) computes in float32.*{kind}"
                       r".*full-integer.*representative_dataset"):
        compile(path, engine_tmp / "refused" / name)
    assert not (engine_tmp / "refused" / name).exists()


def _keras_dense(features: int, units: int, shape: tuple[int, ...] | None = None):
    import keras

    inp = keras.Input(shape or (features,), batch_size=1)
    return keras.Model(inp, keras.layers.Dense(units, bias_initializer="random_normal")(inp))


def _keras_conv(size: int, cin: int, cout: int, kernel: int, **kw):
    import keras

    inp = keras.Input((size, size, cin), batch_size=1)
    return keras.Model(inp, keras.layers.Conv2D(cout, kernel, bias_initializer="random_normal", **kw)(inp))


def _keras_depthwise(size: int, channels: int, kernel: int, **kw):
    import keras

    inp = keras.Input((size, size, channels), batch_size=1)
    layer = keras.layers.DepthwiseConv2D(kernel, bias_initializer="random_normal", **kw)
    return keras.Model(inp, layer(inp))


def _keras_global_pool(size: int, channels: int):
    import keras

    inp = keras.Input((size, size, channels), batch_size=1)
    x = keras.layers.AveragePooling2D(size)(inp)  # like person_detect: one window over the whole map
    return keras.Model(inp, keras.layers.Softmax()(keras.layers.Flatten()(x)))


EXTRA = {
    "dense_per_channel": (lambda: _keras_dense(20, 7),
                          {"_experimental_disable_per_channel_quantization_for_dense_layers": False}),
    "dense_keep_num_dims": (lambda: _keras_dense(5, 6, shape=(3, 4, 5)), {}),
    "conv_groups2": (lambda: _keras_conv(8, 6, 4, 3, groups=2), {}),
    "conv_k5_dilation2_valid": (lambda: _keras_conv(13, 3, 5, 5, dilation_rate=2), {}),
    "conv_k1_s2_odd": (lambda: _keras_conv(9, 7, 9, 1, strides=2), {}),
    "dwconv_mult3_s2_valid": (lambda: _keras_depthwise(11, 3, 3, strides=2, depth_multiplier=3), {}),
    "dwconv_k3_dilation2": (lambda: _keras_depthwise(10, 4, 3, dilation_rate=2, padding="same"), {}),
    "avgpool_global_softmax": (lambda: _keras_global_pool(5, 12), {}),
}


def _convert_extra(name: str, out_dir: Path) -> Path:
    path = out_dir / f"{name}.tflite"
    if path.exists():
        return path
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    build, flags = EXTRA[name]
    model = build()
    shape = tuple(int(d) for d in model.inputs[0].shape)

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(16):
            yield [rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    for key, value in flags.items():
        setattr(converter, key, value)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_extra_generated_models_bitexact_host(name: str, engine_tmp: Path) -> None:
    require_tool("gcc")
    path = _convert_extra(name, engine_tmp / "extra")
    project = compile(path, engine_tmp / "extra-host" / name)
    assert_bitexact(project, path, _random(project, 4, seed=4))


def test_extra_models_have_the_intended_features(engine_tmp: Path) -> None:
    from tinyml_kit.engine.reader import read_tflite

    g = read_tflite(_convert_extra("dense_per_channel", engine_tmp / "extra"))
    assert g.tensors[g.ops[0].inputs[1]].quant.per_channel
    g = read_tflite(_convert_extra("conv_groups2", engine_tmp / "extra"))
    assert g.tensors[g.ops[0].inputs[1]].shape[-1] == 3  # 6 input channels, 2 groups


def test_int8_requantize_quantize_op(shared_models: Path, engine_tmp: Path) -> None:
    """QUANTIZE int8 -> int8 with a new scale and zero point (made by editing hello_world)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    data = (shared_models / "hello_world_int8.tflite").read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.QUANTIZE
    code.version = 1
    model.operatorCodes.append(code)
    graph = model.subgraphs[0]
    op = graph.operators[0]
    op.opcodeIndex, op.inputs, op.outputs = len(model.operatorCodes) - 1, [0], [9]
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.NONE, None
    graph.operators, graph.outputs = [op], [9]
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = engine_tmp / "requantize.tflite"
    path.write_bytes(bytes(builder.Output()))

    project = compile(path, engine_tmp / "requantize")
    assert [c.function for c in project.calls] == ["tk_requantize_8"]
    assert_bitexact(project, path, [[np.array([[v]], dtype=np.int8)] for v in range(-128, 128)])


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", SWEEP + sorted(EXTRA))
def test_generated_models_bitexact_cortex_m4(name: str, modelgen_dir: Path, engine_tmp: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    if name in EXTRA:
        path = _convert_extra(name, engine_tmp / "extra")
        project = compile(path, engine_tmp / "extra-m4" / name, target="cortex-m4")
        assert_bitexact(project, path, _random(project, 3, seed=5))
    else:
        _sweep_case(name, modelgen_dir, engine_tmp, "cortex-m4")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["person_detect", "micro_speech_quantized", "hello_world_int8"])
def test_shared_models_clean_under_sanitizers(shared_models: Path, shared_projects: dict[str, Project],
                                              name: str) -> None:
    project = shared_projects[name]
    samples = _random(project, 3, seed=6)
    if name == "person_detect":
        samples = _person_samples(shared_models, project, 3)
    assert_bitexact(project, shared_models / f"{name}.tflite", samples, target="host", sanitize=True)
