"""Users' own images: ``root/<class_name>/*.png`` (or .jpg/.jpeg/.bmp) as a :class:`Dataset`.

The layout of ``keras.utils.image_dataset_from_directory`` and torchvision's ``ImageFolder``: one
sub-folder per class (searched recursively), classes in alphabetical order unless ``class_names``
says otherwise, hidden files and folders ignored. Images are decoded with Pillow, converted to grey
("L") or RGB (alpha dropped) and resized to ``image_size`` with Pillow's bilinear filter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from tinyml_kit.data.datasets import Dataset
from tinyml_kit.data.errors import ImageFolderError
from tinyml_kit.data.resize import image_size_tuple
from tinyml_kit.errors import MissingDependencyError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_files(folder: Path, extensions: tuple[str, ...], follow_links: bool) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted for a stable order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_links):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        found += [Path(dirpath) / f for f in filenames if _visible(f) and f.lower().endswith(extensions)]
    return sorted(found)


def scan_image_folder(
    root: Path,
    class_names: Sequence[str] | None = None,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    follow_links: bool = False,
) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """``(files, labels, class_names)`` of an image folder, validating its layout."""
    exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    layout = f"expected {root}/<class_name>/<image>{'|'.join(exts)}"
    if not root.exists():
        raise ImageFolderError(f"image folder {root} does not exist; {layout}")
    if not root.is_dir():
        raise ImageFolderError(f"{root} is not a folder; {layout}")
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p.name))
    if class_names is None:
        names = tuple(present)
    else:
        names = tuple(class_names)
        absent = [n for n in names if n not in present]
        if absent:
            raise ImageFolderError(
                f"class folder(s) {', '.join(absent)} not found in {root}; "
                f"present: {', '.join(present) or 'none'}"
            )
    if not names:
        loose = [p.name for p in root.iterdir() if p.is_file() and p.name.lower().endswith(exts)]
        hint = f" ({len(loose)} images lie directly in it; move them into class folders)" if loose else ""
        raise ImageFolderError(f"image folder {root} has no class sub-folders{hint}; {layout}")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = _class_files(root / name, exts, follow_links)
        if not found:
            raise ImageFolderError(
                f"class folder {root / name} holds no {'/'.join(exts)} files; add images or remove the folder"
            )
        files += found
        labels += [label] * len(found)
    return files, np.asarray(labels, dtype=np.int64), names


def decode_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image as uint8 ``(height, width, channels)``; unreadable files raise, naming the file."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError("reading image folders needs Pillow: pip install pillow") from None
    height, width = size
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "P":  # palette, possibly with transparency
                image = image.convert("RGBA")
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageFolderError(f"cannot read image {path}: {exc}; delete or re-save the file") from None
    return pixels.reshape(height, width, channels)


class ImageFolder(Dataset):
    """A :class:`Dataset` read from ``root/<class_name>/**/*.{png,jpg,jpeg,bmp}``.

    Args:
        root: the folder holding one sub-folder per class.
        image_size: ``(height, width)`` or an int for square images; every image is resized to it.
        channels: 1 (grey) or 3 (RGB).
        class_names: the classes to read, in label order; default: every sub-folder, alphabetically.
        extensions: file suffixes to read (case-insensitive).
        follow_links: follow symbolic links to folders.
        progress: show a progress bar while decoding.

    Attributes (besides the :class:`Dataset` ones): ``root``; ``files``, the path of each image.

    Example:
        >>> ds = ImageFolder("flowers/", image_size=96)           # doctest: +SKIP
        >>> train, val = ds.split_off(0.2, seed=0)                  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: int | tuple[int, int],
        *,
        channels: int = 3,
        class_names: Sequence[str] | None = None,
        extensions: Iterable[str] = IMAGE_EXTENSIONS,
        follow_links: bool = False,
        progress: bool = False,
    ):
        if channels not in (1, 3):
            raise ImageFolderError(f"channels must be 1 or 3; received channels={channels}")
        size = image_size_tuple(image_size)
        self.root = Path(root).expanduser()
        files, labels, names = scan_image_folder(self.root, class_names, extensions, follow_links)
        x = np.empty((len(files), *size, channels), dtype=np.uint8)
        for i, path in enumerate(_with_progress(files, progress, f"reading {self.root}")):
            x[i] = decode_image(path, size, channels)
        super().__init__(x, labels, names, name=self.root.name or str(self.root))
        self.files = tuple(files)


def _with_progress(items: list[Path], enabled: bool, description: str) -> Iterable[Path]:
    if not enabled:
        return items
    from rich.progress import track

    return track(items, description=description, transient=True)
