"""``tinyml-kit tinytl``: methods, memory, fit."""

from __future__ import annotations

import argparse
import json

import pytest

from tinyml_kit.tinytl import cli
from tinyml_kit.tinytl.errors import TinyTLError
from tinyml_kit.tinytl.methods import METHODS


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_methods_lists_all_six(capsys):
    assert _run("methods") == 0
    out = capsys.readouterr().out
    assert all(name in out and method.paper_name in out for name, method in METHODS.items())


def test_memory_prints_every_method_and_writes_json(capsys, tmp_path):
    path = tmp_path / "memory.json"
    assert _run("memory", "--image-size", "64", "--num-classes", "10", "--json", str(path)) == 0
    out = capsys.readouterr().out
    assert "paper MB" not in out  # only printed for the paper's setting
    reports = json.loads(path.read_text())
    assert list(reports) == list(METHODS)
    assert reports["full"]["total"] > reports["bias"]["total"] > 0


def test_fit_refuses_tflite_without_out():
    with pytest.raises(TinyTLError, match="--out"):
        _run("fit", "--tflite")


def test_fit_deploy_refuses_group_norm(tmp_path):
    with pytest.raises(TinyTLError, match="--norm batch"):
        _run("fit", "--deploy", "host", "--norm", "group", "--out", str(tmp_path))


def test_unknown_data_names_the_choices():
    with pytest.raises(TinyTLError, match="fashion_mnist"):
        _run("fit", "--data", "no_such_dataset_or_folder", "--backbone", "proxylessnas_mobile")


@pytest.mark.slow
def test_fit_writes_model_metrics_and_a_bit_exact_firmware_project(tmp_path, capsys):
    out = tmp_path / "run"
    code = _run("fit", "--backbone", "proxylessnas_mobile", "--method", "lite_residual+bias",
                "--image-size", "32", "--per-class", "4", "--test-per-class", "2", "--epochs", "1",
                "--out", str(out), "--deploy", "host", "--quiet")  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["modelled_bytes"] > 0
    assert (out / "model.keras").stat().st_size > 0 and (out / "model_int8.tflite").stat().st_size > 0
    assert metrics["deploy"]["reference"] in ("tflm", "litert") and metrics["deploy"]["checked_samples"] == 5
    assert (out / "project" / "model.c").is_file()
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "outputs equal" in printed
