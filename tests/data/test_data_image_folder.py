"""ImageFolder on real PNG/JPEG/BMP files written here, and its error messages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinyml_kit.data import Dataset, DatasetError, ImageFolder, ImageFolderError

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to write test images (pip install pillow)")

RED, BLUE = (220, 20, 30), (10, 40, 200)


def _save(path: Path, image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "shapes"
    _save(root / "red" / "a.png", Image.new("RGB", (30, 20), RED))
    _save(root / "red" / "b.PNG", Image.new("RGBA", (12, 12), (*RED, 128)))
    _save(root / "red" / "nested" / "c.bmp", Image.new("RGB", (16, 16), RED))
    _save(root / "blue" / "a.jpg", Image.new("RGB", (40, 40), BLUE))
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([*BLUE, *([0] * 765)])
    _save(root / "blue" / "p.png", palette)
    _save(root / "grey" / "g.png", Image.new("L", (16, 16), 77))
    _save(root / "grey" / ".hidden.png", Image.new("L", (16, 16), 0))
    (root / "grey" / "notes.txt").write_text("not an image")
    return root


def test_reads_classes_alphabetically_with_resizing_and_conversion(folder):
    ds = ImageFolder(folder, image_size=16)
    assert isinstance(ds, Dataset)
    assert ds.class_names == ("blue", "grey", "red")
    assert ds.x.shape == (6, 16, 16, 3) and ds.x.dtype == np.uint8
    assert ds.class_counts().tolist() == [2, 1, 3]
    names = [p.relative_to(folder).as_posix() for p in ds.files]
    assert names == ["blue/a.jpg", "blue/p.png", "grey/g.png", "red/a.png", "red/b.PNG", "red/nested/c.bmp"]
    assert ds.y.tolist() == [0, 0, 1, 2, 2, 2]
    np.testing.assert_array_equal(ds.x[1], np.broadcast_to(BLUE, (16, 16, 3)))  # palette PNG
    assert np.abs(ds.x[0].astype(int) - BLUE).max() <= 3  # JPEG is lossy
    np.testing.assert_array_equal(ds.x[2], np.full((16, 16, 3), 77))  # grey replicated
    for i in (3, 4, 5):  # resized from 30x20 and 12x12, RGBA alpha dropped, BMP
        np.testing.assert_array_equal(ds.x[i], np.broadcast_to(RED, (16, 16, 3)))
    sub = ds.subset(per_class=1)
    assert len(sub) == 3 and sub.class_counts().tolist() == [1, 1, 1]


def test_grey_output_explicit_classes_and_rectangular_size(folder):
    ds = ImageFolder(folder, image_size=(10, 14), channels=1, class_names=["red", "grey"])
    assert ds.class_names == ("red", "grey") and ds.x.shape == (4, 10, 14, 1)
    assert ds.y.tolist() == [0, 0, 0, 1]
    assert np.all(ds.x[0] == round(0.299 * RED[0] + 0.587 * RED[1] + 0.114 * RED[2]))


def test_missing_root_and_plain_file(tmp_path):
    with pytest.raises(ImageFolderError, match="does not exist"):
        ImageFolder(tmp_path / "nope", 16)
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ImageFolderError, match="is not a folder"):
        ImageFolder(tmp_path / "file.png", 16)


def test_empty_root_and_images_without_class_folders(tmp_path):
    with pytest.raises(ImageFolderError, match="no class sub-folders"):
        ImageFolder(tmp_path, 16)
    _save(tmp_path / "loose.png", Image.new("L", (4, 4)))
    with pytest.raises(ImageFolderError, match="1 images lie directly in it"):
        ImageFolder(tmp_path, 16)


def test_empty_class_folder_is_named(folder):
    (folder / "empty").mkdir()
    with pytest.raises(ImageFolderError, match=re.escape(f"class folder {folder / 'empty'} holds no")):
        ImageFolder(folder, 16)


def test_unreadable_image_is_named(folder):
    broken = folder / "red" / "broken.png"
    broken.write_bytes((folder / "red" / "a.png").read_bytes()[:40])  # truncated PNG
    with pytest.raises(ImageFolderError, match=r"cannot read image .*broken\.png"):
        ImageFolder(folder, 16)


def test_unknown_class_names_and_bad_arguments(folder):
    with pytest.raises(ImageFolderError, match=r"cat not found.*present: blue, grey, red"):
        ImageFolder(folder, 16, class_names=["cat"])
    with pytest.raises(ImageFolderError, match="channels must be 1 or 3"):
        ImageFolder(folder, 16, channels=2)
    with pytest.raises(DatasetError, match="image size"):
        ImageFolder(folder, 0)
