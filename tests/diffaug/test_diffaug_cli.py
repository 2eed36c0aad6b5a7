"""`tinyml-kit diffaug` CLI and the benchmark's RESULTS.md section writer."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tinyml_kit.diffaug import cli, features

REPO = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tinyml-kit diffaug")
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_module_imports_without_tensorflow():
    code = "import sys, tinyml_kit.diffaug.cli; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_arguments_and_help(capsys):
    args = parse("train", "--fraction", "0.1", "--steps", "5", "--augment", "adaptive", "--out", "x")
    assert (args.fraction, args.steps, args.augment, args.out) == (0.1, 5, "adaptive", Path("x"))
    with pytest.raises(SystemExit):
        parse("train", "--augment", "mixup", "--out", "x")
    assert cli.run(parse()) == 0 and "train" in capsys.readouterr().out


def tiny_extractor() -> features.FeatureExtractor:
    """A random conv feature map: exercises the scoring path without the 3-epoch classifier training."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 5, strides=4),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    return features.FeatureExtractor("test-random", model)


def test_train_end_to_end_on_fashion_mnist(tmp_path, monkeypatch, capsys):
    from tinyml_kit import data

    try:
        data.load("fashion_mnist", "test")
    except data.DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST not installed: {exc}")
    monkeypatch.setattr(features, "classifier_extractor", lambda name, **kw: tiny_extractor())
    out = tmp_path / "run"
    args = parse(
        "train", "--fraction", "0.01", "--steps", "4", "--log-every", "2", "--augment", "adaptive",
        "--width", "8", "--latent-dim", "8", "--batch-size", "16", "--fid-samples", "200", "--quiet",
        "--d-lr", "4e-4", "--out", str(out),
    )  # fmt: skip
    assert cli.run(args) == 0
    printed = capsys.readouterr().out
    assert "600 fashion_mnist images" in printed and "FID" in printed and "not comparable" in printed
    names = {p.name for p in out.iterdir()}
    assert {"samples_epoch_0001.png", "samples_final.png", "generator_ema.keras", "metrics.json"} <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_images"] == 600 and metrics["steps"] == 4
    assert np.isfinite(metrics["metrics"]["fid"]) and metrics["metrics"]["n_fake"] == 200
    assert "p" in metrics["final_logs"]
    assert metrics["config"]["d_lr"] == 4e-4 and metrics["config"]["g_lr"] == 2e-4
    generator = keras.saving.load_model(out / "generator_ema.keras")
    assert tuple(generator.output.shape) == (None, 28, 28, 1)


def load_benchmark():
    spec = importlib.util.spec_from_file_location("diffaug_fid", REPO / "benchmarks" / "diffaug_fid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_tables():
    bench = load_benchmark()
    common = {"fraction": 0.1, "p_final": 0.0, "seconds": 30.0}
    runs = [
        {**common, "mode": "none", "seed": s, "fid": f, "kid": 0.01, "step_ms": 10.0, "d_gap": g}
        for s, f, g in ((0, 10.0, 0.5), (1, 12.0, 0.7))
    ] + [{**common, "mode": "diffaug", "seed": 0, "fid": 5.0, "kid": 0.002, "step_ms": 12.5, "d_gap": 0.1}]
    table = bench.results_table(runs, [0.1], ["none", "diffaug"])
    assert "| 10% | 11.00 ± 1.00 | 5.00 | 0.01 ± 0 | 0.002 | 0.60 ± 0.10 | 0.10 |" in table
    assert "| 10% | diffaug | 0 | 5.00 | 0.002 | 0.10 | 0.00 | 12 | 30 |" in bench.runs_table(runs)
    without_probe = [{k: v for k, v in runs[0].items() if k != "d_gap"}]
    assert "D gap" not in bench.results_table(without_probe, [0.1], ["none"])
    text, share = bench.overhead_summary(runs, aug_ms=0.5, batch=64)
    assert share == pytest.approx(20.0) and "20.0% of the DiffAugment step time (median of 1 pair;" in text
    assert "39.78 → 22.40" in bench.published_table()
    settings = {
        "arch": "dcgan", "steps": 10, "batch_size": 64, "seeds": [0, 1], "policy": "color",
        "fid_samples": 100, "reference_images": 60000, "features": "classifier-fashion_mnist-v1",
        "fractions": [0.1], "modes": ["none", "diffaug"], "out": "out",
    }  # fmt: skip
    report = {"command": "python x", "settings": settings, "runs": runs, "augment_ms": 0.5,
              "wall_seconds": 60.0, "device": "CPU only"}  # fmt: skip
    body = bench.render(report)
    assert table in body and "not comparable to Inception-FID" in body
    assert "Budget: 3 runs, 0.5 min of training each on average (2 min in total); " in body
    assert "1.0 min wall, on CPU only" in body
    assert "**Reduced run** (fractions [0.1] (default [1.0, 0.2, 0.1, 0.01]); modes" in body
    assert "steps 10 (default" in body and "seeds" not in body.split("instead of")[0]
    assert "**Incomplete: 3 of 4 runs finished**" in body


def test_benchmark_merges_side_by_side_grids_and_summarises_the_fid_change():
    bench = load_benchmark()
    settings = {"arch": "dcgan", "steps": 10, "batch_size": 32, "width": 64, "latent_dim": 128,
                "policy": "color", "fid_samples": 100, "features": "f", "data": "fashion_mnist"}  # fmt: skip

    def grid(fraction: float, seed: int, fids: dict[str, float], wall: float) -> dict:
        runs = [{"fraction": fraction, "mode": m, "seed": seed, "fid": f} for m, f in fids.items()]
        shard = settings | {"fractions": [fraction], "modes": list(fids), "seeds": [seed]}
        return {"command": f"c{fraction}{seed}", "settings": shard, "runs": runs, "augment_ms": 1.0,
                "wall_seconds": wall, "device": "CPU"}  # fmt: skip

    merged = bench.merge_reports([
        grid(0.01, 1, {"none": 50.0, "diffaug": 30.0}, 60.0),
        grid(0.1, 0, {"none": 40.0, "diffaug": 60.0}, 90.0),
    ])  # fmt: skip
    assert merged["settings"]["fractions"] == [0.1, 0.01] and merged["settings"]["seeds"] == [0, 1]
    assert merged["settings"]["modes"] == ["none", "diffaug"] and len(merged["runs"]) == 4
    assert merged["wall_seconds"] == 90.0 and merged["shards"] == 2
    command = "python b.py --fractions 0.1 --steps 10 --seeds 0 --out o/a --results /tmp/R.md"
    assert bench.equivalent_command(command, merged["settings"]) == (
        "python b.py --steps 10 --fractions 0.1,0.01 --modes none,diffaug --seeds 0,1"
    )
    summary = bench.fid_change_summary(merged["runs"], merged["settings"]["fractions"])
    assert "diffaug +50% at 10% (misses the -30% target)" in summary
    assert summary.endswith("; diffaug -40% at 1%.")  # the target is judged at 10 % only
    assert "meets" in bench.fid_change_summary(merged["runs"], [0.01], target_fraction=0.01)
    other = grid(0.2, 0, {"none": 1.0}, 1.0)
    other["settings"]["steps"] = 20
    with pytest.raises(SystemExit, match="differ in steps"):
        bench.merge_reports([grid(0.1, 0, {"none": 1.0}, 1.0), other])
    again = bench.merge_reports([merged, grid(0.2, 0, {"none": 45.0}, 30.0)])  # a merged grid merges again
    assert again["shards"] == 3 and again["settings"]["fractions"] == [0.2, 0.1, 0.01]
    order = [(r["fraction"], r["seed"], r["mode"]) for r in again["runs"]]
    assert order == [(0.2, 0, "none"), (0.1, 0, "none"), (0.1, 0, "diffaug"), (0.01, 1, "none"),
                     (0.01, 1, "diffaug")]  # fmt: skip


def test_benchmark_sample_figure_tiles_the_first_seed(tmp_path):
    from PIL import Image

    bench = load_benchmark()
    runs = []
    for mode, shade, seed in (("none", 40, 0), ("diffaug", 200, 0), ("none", 120, 1)):
        path = tmp_path / f"{mode}_{seed}.png"
        Image.fromarray(np.full((30, 30), shade, np.uint8)).save(path)
        runs.append({"fraction": 0.1, "mode": mode, "seed": seed, "fid": 10.0 + seed, "grid": str(path)})
    png = bench.plot_samples(runs, [0.1, 0.01], ["none", "diffaug"], tmp_path / "samples.png")
    assert png is not None and png.stat().st_size > 1000
    with Image.open(png) as figure:
        pixels = np.asarray(figure.convert("L"))
    area = {shade: int((pixels == shade).sum()) for shade in (40, 200, 120)}
    assert area[40] > 2000 and area[200] > 2000 and area[120] < 100  # seed 0's two grids, not seed 1's
    assert Image.open(png).mode == "L"  # grey samples stay grey
    colour = tmp_path / "colour.png"
    Image.fromarray(np.full((30, 30, 3), (200, 30, 30), np.uint8)).save(colour)
    rgb = bench.plot_samples([{**runs[0], "grid": str(colour)}], [0.1], ["none"], tmp_path / "rgb.png")
    assert Image.open(rgb).mode == "RGB"
    missing = [{**r, "grid": str(tmp_path / "gone.png")} for r in runs]
    assert bench.plot_samples(missing, [0.1], ["none"], tmp_path / "none.png") is None


def test_benchmark_fid_curves_table_and_plot(tmp_path):
    bench = load_benchmark()

    def run(mode: str, seed: int, fids: list[float]) -> dict:
        curve = [{"step": 100 * (i + 1), "fid": f, "kid": 0.0} for i, f in enumerate(fids)]
        return {"fraction": 0.1, "mode": mode, "seed": seed, "fid_curve": curve}

    runs = [run("none", 0, [50.0, 40.0]), run("none", 1, [60.0, 44.0]), run("diffaug", 0, [55.0])]
    assert bench.curve_means(runs, 0.1, "none") == [(100, 55.0, 2), (200, 42.0, 2)]
    table = bench.curves_table(runs, [0.1], ["none", "diffaug"])
    assert "| 10% | 100 | 55.00 | 55.00 |" in table and "| 10% | 200 | 42.00 | - |" in table
    png = bench.plot_curves(runs, [0.1], ["none", "diffaug"], tmp_path / "curves.png")
    assert png is not None and png.stat().st_size > 1000
    flat = [{**r, "fid_curve": []} for r in runs]
    assert bench.plot_curves(flat, [0.1], ["none"], tmp_path / "x.png") is None
