"""Offline ImageNet class names, decode_predictions and photo loading."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_kit.zoo import decode_predictions, imagenet_classes, imagenet_labels, load_image
from tinyml_kit.zoo.errors import ZooError
from tinyml_kit.zoo.imagenet import imagenet_index


def test_imagenet_classes_are_the_standard_1000():
    classes = imagenet_classes()
    labels = imagenet_labels()
    assert len(classes) == len(labels) == 1000
    assert len({c.wnid for c in classes}) == 1000
    assert [c.index for c in classes] == list(range(1000))
    assert sorted(c.wnid for c in classes) == [c.wnid for c in classes]  # ILSVRC order = sorted wnids
    assert (labels[0], classes[0].wnid) == ("tench", "n01440764")
    assert (labels[985], classes[985].wnid) == ("daisy", "n11939491")
    assert labels[698] == "palace" and "stupa" in classes[832].synonyms
    assert classes[999].wnid == "n15075141"
    assert imagenet_index("n02085620") == 151  # Chihuahua
    with pytest.raises(ZooError, match="not an ImageNet-1k WordNet id"):
        imagenet_index("n00000000")


def test_decode_predictions_orders_by_score():
    scores = np.zeros((2, 1000), np.float32)
    scores[0, [985, 738, 883]] = [0.7, 0.2, 0.1]
    scores[1, 698] = 5.0
    first, second = decode_predictions(scores, top=3)
    assert [p.index for p in first] == [985, 738, 883]
    assert first[0].name == "daisy" and first[0].wnid == "n11939491"
    assert first[0].score == pytest.approx(0.7)
    assert second[0].index == 698 and len(second) == 3
    with pytest.raises(ZooError, match=r"\(batch, 1000\)"):
        decode_predictions(np.zeros((1, 19)))


def test_load_image_centre_crops_and_resizes(sample_photos, tmp_path):
    photo = sample_photos["china"]
    image = load_image(photo, 96)
    assert image.shape == (96, 96, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 255.0
    # The centre crop of a flat-coloured frame with a different centre keeps only the centre colour.
    framed = np.zeros((100, 200, 3), np.uint8)
    framed[:, 50:150] = 200
    np.testing.assert_allclose(load_image(framed, 32, crop_fraction=1.0), 200.0, atol=1.0)
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    np.testing.assert_allclose(load_image(path, 64), load_image(photo, 64), atol=1e-4)
    with pytest.raises(ZooError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ZooError, match="crop_fraction"):
        load_image(photo, crop_fraction=0.0)


def test_package_import_is_lazy():
    """``import tinyml_kit.zoo`` (and the label helpers) must not pull in Keras or TensorFlow."""
    import subprocess
    import sys

    code = (
        "import sys, tinyml_kit.zoo as z; z.imagenet_labels(); "
        "print(sorted(m for m in ('keras', 'tensorflow', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
