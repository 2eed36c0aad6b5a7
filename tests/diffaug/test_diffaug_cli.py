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
        "--out", str(out),
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
    generator = keras.saving.load_model(out / "generator_ema.keras")
    assert tuple(generator.output.shape) == (None, 28, 28, 1)


def load_benchmark():
    spec = importlib.util.spec_from_file_location("diffaug_fid", REPO / "benchmarks" / "diffaug_fid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_only_its_results_section(tmp_path):
    bench = load_benchmark()
    path = tmp_path / "RESULTS.md"
    bench.update_results_section(path, "first")
    assert bench.BEGIN in path.read_text() and "first" in path.read_text()
    path.write_text(path.read_text() + "\n<!-- other:begin -->\nkeep me\n<!-- other:end -->\n")
    bench.update_results_section(path, "second")
    text = path.read_text()
    assert "second" in text and "first" not in text and "keep me" in text and text.count(bench.BEGIN) == 1


def test_benchmark_tables():
    bench = load_benchmark()
    runs = [
        {"fraction": 0.1, "mode": "none", "seed": s, "fid": f, "kid": 0.01, "step_ms": 10.0}
        for s, f in ((0, 10.0), (1, 12.0))
    ] + [{"fraction": 0.1, "mode": "diffaug", "seed": 0, "fid": 5.0, "kid": 0.002, "step_ms": 12.5}]
    table = bench.results_table(runs, [0.1], ["none", "diffaug"])
    assert "| 10% | 11.00 ± 1.00 | 5.00 | 0.01 ± 0 | 0.002 |" in table
    text, share = bench.overhead_summary(runs, aug_ms=0.5, batch=64)
    assert share == pytest.approx(20.0) and "20.0% of the step time" in text
    assert "39.78 → 22.40" in bench.published_table()
    settings = {
        "arch": "dcgan", "steps": 10, "batch_size": 64, "seeds": [0, 1], "policy": "color",
        "fid_samples": 100, "reference_images": 60000, "features": "classifier-fashion_mnist-v1",
        "fractions": [0.1], "modes": ["none", "diffaug"], "out": "out",
    }  # fmt: skip
    report = {"command": "python x", "settings": settings, "runs": runs, "augment_ms": 0.5,
              "wall_seconds": 60.0, "device": "CPU only"}  # fmt: skip
    body = bench.render(report)
    assert table in body and "not comparable to Inception-FID" in body and "1.0 min wall on CPU only" in body
