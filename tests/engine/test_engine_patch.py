"""Patch-based inference (tinyml_kit.engine.patch): bit-exactness against TFLM, the split/grid chooser,
the configuration errors, the region and overlap arithmetic, and the reports of both memory regimes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tk_testing import require_tool

from tinyml_kit.engine import PatchConfig, bench, compile
from tinyml_kit.engine import modelgen as mg
from tinyml_kit.engine.lowering.common import Window
from tinyml_kit.engine.passes import run_passes
from tinyml_kit.engine.patch import (
    PatchError,
    Region,
    build_stage,
    choose_stage,
    input_region,
    stage_chain,
    stage_overlap_shift,
    stage_regions,
)
from tinyml_kit.engine.project import build_problem, lower_graph
from tinyml_kit.engine.reader import read_tflite

TFLM_PERSON_DETECT_ARENA = 85_264  # /work/shared/models/README.md


def _assert_bit_exact(project, path: Path, samples, **run_kw) -> None:
    ours = project.run_many(samples, **run_kw)
    reference, name = bench.reference_run(path, samples)
    exact, mismatched, worst = bench.compare_outputs(ours, reference)
    assert exact, f"{path.name}: {mismatched}/{len(samples)} samples differ from {name} (|diff| {worst})"


@pytest.fixture(scope="module")
def person_detect(shared_models: Path) -> Path:
    return shared_models / "person_detect.tflite"


@pytest.fixture(scope="module")
def person_graph(person_detect: Path):
    graph = run_passes(read_tflite(person_detect))
    return graph, lower_graph(graph)


@pytest.fixture(scope="module")
def patched_person(person_detect: Path, tmp_path_factory: pytest.TempPathFactory):
    return compile(person_detect, tmp_path_factory.mktemp("patch") / "person", patch=True)


# --- bit-exactness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m4", marks=pytest.mark.qemu)])
def test_patched_person_detect_is_bit_exact_and_meets_the_memory_target(patched_person, person_detect: Path,
                                                                        target: str) -> None:
    require_tool("gcc")
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        require_tool("qemu-system-arm")
    report = patched_person.patch
    assert report["applied"] and report["n_patches"] >= 4
    assert patched_person.peak_sram_bytes <= 0.25 * TFLM_PERSON_DETECT_ARENA
    assert patched_person.mac_overhead <= 0.2
    assert patched_person.layer_by_layer_peak_sram_bytes > 1.5 * patched_person.peak_sram_bytes
    samples = mg.random_inputs(person_detect, 6 if target == "host" else 3, seed=11)
    _assert_bit_exact(patched_person, person_detect, samples, target=target)


# (case, split op, grid): SAME and VALID padding, stride 2, 2..5 ops in the stage, a pooling op, uneven
# patches, one-column grids (the last op writes rows in place) and multi-column ones (patch copies).
CHAIN_CONFIGS = [
    ("patch_chain_same", 3, (2, 2)),
    ("patch_chain_valid", 4, (3, 3)),
    pytest.param("patch_chain_same", 4, (4, 1), marks=pytest.mark.slow),
    pytest.param("patch_chain_same", 5, (1, 3), marks=pytest.mark.slow),
    pytest.param("patch_chain_valid", 1, (2, 3), marks=pytest.mark.slow),
    pytest.param("patch_chain_valid", 3, (4, 1), marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "split", "grid"), CHAIN_CONFIGS)
def test_generated_chains_are_bit_exact_patch_by_patch(name: str, split: int, grid: tuple[int, int],
                                                       tmp_path: Path) -> None:
    require_tool("gcc")
    path = mg.generate(name)
    project = compile(path, tmp_path / name, patch=PatchConfig(n_patches=grid, split_op=split))
    assert project.patch["applied"] and project.patch["split_op"] == split
    assert project.patch["grid"] == list(grid)
    _assert_bit_exact(project, path, mg.random_inputs(path, 8, seed=3))


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize(("name", "split", "grid"), [("patch_chain_same", 3, (3, 2)),
                                                     ("patch_chain_valid", 4, (2, 2))])
def test_generated_chains_are_bit_exact_patch_by_patch_on_cortex_m4(name: str, split: int,
                                                                    grid: tuple[int, int],
                                                                    tmp_path: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    path = mg.generate(name)
    config = PatchConfig(n_patches=grid, split_op=split)
    project = compile(path, tmp_path / name, target="cortex-m4", patch=config)
    samples = mg.random_inputs(path, 4, seed=4)
    _assert_bit_exact(project, path, samples)
    _assert_bit_exact(project, path, samples, portable=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", mg.net_cases())
def test_networks_are_bit_exact_with_patches(name: str, tmp_path: Path) -> None:
    require_tool("gcc")
    path = mg.generate(name)
    project = compile(path, tmp_path / name, patch=True)
    assert project.patch is not None
    if project.patch["applied"]:
        assert project.peak_sram_bytes < project.layer_by_layer_peak_sram_bytes
        assert project.mac_overhead <= 0.2
    _assert_bit_exact(project, path, mg.random_inputs(path, 4, seed=5))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "config"), [
    ("person_detect", True), ("patch_chain_same", PatchConfig(n_patches=(2, 3), split_op=5))])
def test_patched_models_are_clean_under_sanitizers(name: str, config, shared_models: Path,
                                                   tmp_path: Path) -> None:
    require_tool("gcc")
    path = shared_models / f"{name}.tflite" if name == "person_detect" else mg.generate(name)
    project = compile(path, tmp_path / name, patch=config)
    _assert_bit_exact(project, path, mg.random_inputs(path, 2, seed=6), sanitize=True)


# --- the chooser ---------------------------------------------------------------------------------------


def _choose(graph, calls, config: PatchConfig):
    baseline = 10**9
    return choose_stage(graph, calls, config, lambda steps: build_problem(graph, steps),
                        baseline_peak=baseline, time_limit_s=1.0)


def test_chooser_lowers_the_peak_within_the_overhead_bound(person_graph, patched_person) -> None:
    graph, calls = person_graph
    choice, _ = _choose(graph, calls, PatchConfig(max_mac_overhead=0.05))
    assert choice is not None and choice.mac_overhead <= 0.05
    assert choice.plan.arena_bytes < patched_person.layer_by_layer_peak_sram_bytes
    tight, _ = _choose(graph, calls, PatchConfig(max_mac_overhead=0.004))
    assert tight is None or tight.mac_overhead <= 0.004
    none, reason = _choose(graph, calls, PatchConfig(max_mac_overhead=0.0))
    assert none is None and "extra MACs" in reason


def test_chooser_honours_explicit_split_and_grid(person_graph) -> None:
    graph, calls = person_graph
    choice, _ = _choose(graph, calls, PatchConfig(n_patches=(3, 2), split_op=2, max_mac_overhead=0.0))
    assert choice is not None  # explicit split and grid: used even beyond the overhead bound
    assert choice.stage.op.index == 2 and choice.stage.grid == (3, 2)
    assert [op.index for op in choice.stage.ops] == [0, 1, 2]
    only_split, _ = _choose(graph, calls, PatchConfig(split_op=7))
    assert only_split is not None and only_split.stage.op.index == 7
    only_grid, _ = _choose(graph, calls, PatchConfig(n_patches=4))
    assert only_grid is not None and only_grid.stage.grid == (4, 4)


@pytest.mark.parametrize(("config", "message"), [
    (PatchConfig(split_op=99), r"split_op=99: the model has no op #99.*can end a patch stage: #1, #2"),
    (PatchConfig(split_op=30), r"op #30 \(SOFTMAX\) cannot end a patch stage"),
    (PatchConfig(split_op=0), r"op #0 \(DEPTHWISE_CONV_2D\) cannot end a patch stage: .*fewer than two ops"),
    (PatchConfig(n_patches=1), r"n_patches=1 gives a 1x1 grid"),
    (PatchConfig(n_patches=(2, 0)), r"n_patches=\(2, 0\)"),
    (PatchConfig(n_patches="4"), r"n_patches must be an int"),
    (PatchConfig(n_patches=30, split_op=3), r"30x30 grid but the output of op #3 .* is 24x24"),
    (PatchConfig(max_mac_overhead=-0.1), r"max_mac_overhead must be a fraction >= 0"),
    (PatchConfig(split_op="3"), r"split_op must be an op index"),
])
def test_invalid_configurations_name_the_field_or_op(person_graph, config: PatchConfig, message: str) -> None:
    graph, calls = person_graph
    with pytest.raises(PatchError, match=message):
        _choose(graph, calls, config)


def test_compile_rejects_a_bad_patch_argument(person_detect: Path, tmp_path: Path) -> None:
    with pytest.raises(PatchError, match=r"patch=\.\.\.\) takes True, False or a PatchConfig"):
        compile(person_detect, tmp_path / "p", patch="yes")
    assert not (tmp_path / "p").exists()


def test_models_without_a_patch_stage_compile_layer_by_layer(shared_models: Path, tmp_path: Path) -> None:
    project = compile(shared_models / "hello_world_int8.tflite", tmp_path / "hello", patch=True)
    assert project.patch["applied"] is False and "no op can end a patch stage" in project.patch["reason"]
    assert project.peak_sram_bytes == project.layer_by_layer_peak_sram_bytes and project.mac_overhead == 0.0


# --- regions, overlap, reports ----------------------------------------------------------------------


def test_input_region_follows_the_full_frame_padding() -> None:
    win = Window(in_h=48, in_w=48, out_h=24, out_w=24, k_h=3, k_w=3, stride_h=2, stride_w=2, dilation_h=1,
                 dilation_w=1, pad_top=0, pad_left=0)  # SAME, stride 2: one row of padding at the bottom
    assert input_region(win, Region(0, 6, 0, 6)) == Region(0, 13, 0, 13)
    assert input_region(win, Region(18, 24, 6, 12)) == Region(36, 48, 12, 25)  # clipped at the frame
    same = Window(12, 12, 12, 12, 5, 5, 1, 1, 1, 1, 2, 2)
    assert input_region(same, Region(0, 4, 4, 8)) == Region(0, 6, 2, 10)


def test_stage_overlap_shift_never_clobbers_a_later_read() -> None:
    wins = [Window(20, 20, 10, 10, 3, 3, 2, 2, 1, 1, 0, 0), Window(10, 10, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1)]
    for grid in ((2, 2), (3, 2), (5, 1), (1, 4)):
        regions = stage_regions(wins, grid)
        in_c, out_c = 3, 5
        shift = stage_overlap_shift(regions, 20, in_c, 10, out_c)
        written: set[int] = set()
        for per_op in regions:
            inp, out = per_op[0][0], per_op[-1][1]
            reads = {(y * 20 + x) * in_c + c for y in range(inp.y0, inp.y1) for x in range(inp.x0, inp.x1)
                     for c in range(in_c)}
            assert not reads & written, f"grid {grid}: a patch reads input bytes already overwritten"
            written |= {shift + (y * 10 + x) * out_c + c for y in range(out.y0, out.y1)
                        for x in range(out.x0, out.x1) for c in range(out_c)}


def test_stage_chain_stops_at_branches_and_reshapes(person_graph) -> None:
    graph, _ = person_graph
    assert stage_chain(graph, 3) == [0, 1, 2, 3]
    stage = build_stage(graph, [0, 1, 2, 3], (2, 2))
    assert stage.macs >= stage.full_macs and len(stage.calls) == 4 and len(stage.calls[0]) == 4
    assert stage.place_calls is not None and stage.scratch_bytes == stage.sub_plan.arena_bytes


def test_manifest_reports_both_regimes(patched_person) -> None:
    report = patched_person.patch
    for key in ("split_op", "grid", "mac_overhead", "extra_macs", "stage_peak_bytes", "rest_peak_bytes",
                "layer_by_layer_peak_bytes", "stage_scratch_bytes"):
        assert key in report, key
    assert max(report["stage_peak_bytes"], report["rest_peak_bytes"]) == patched_person.peak_sram_bytes
    assert patched_person.manifest["executed_macs"] == patched_person.manifest["macs"] + report["extra_macs"]
    model_c = (patched_person.out_dir / "model.c").read_text()
    assert f"for (int32_t k = 0; k < {report['n_patches']}; ++k)" in model_c
    assert "tk_patch_place_s8" in model_c or report["grid"][1] == 1
    # loading the project rebuilds the stage from the manifest
    from tinyml_kit.engine import Project

    reopened = Project.load(patched_person.out_dir)
    stages = [c for c in reopened.calls if c.kernel == "patch_stage"]
    assert len(stages) == 1 and list(stages[0].grid) == report["grid"]


def test_cli_compile_prints_both_regimes(person_detect: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tinyml_kit.cli import main

    assert main(["engine", "compile", str(person_detect), "-o", str(tmp_path / "p"), "--patches", "4",
                 "--split-op", "3"]) == 0
    out = capsys.readouterr().out
    assert "layer by layer" in out and "patch by patch" in out and "ops #0..#3 in 4x4 patches" in out
    assert "% MACs]" in out
    assert main(["engine", "compile", str(person_detect), "-o", str(tmp_path / "q"), "--split-op", "99"]) == 2
    assert "split_op=99" in capsys.readouterr().err
