"""Deterministic stratified sampling: subsets and train/test splits that keep class proportions."""

from __future__ import annotations

import numpy as np

from tinyml_kit.data.errors import DatasetError


def class_indices(y: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """Indices of each class's samples, in dataset order."""
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(num_classes + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(num_classes)]


def allocate(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Per-class counts proportional to ``counts``, summing to ``fraction * counts.sum()`` rounded half up.

    Largest-remainder rounding: each class gets ``floor(fraction * n_c)``, then the classes with the
    largest fractional parts (ties: lower class index) get one more until the total is reached.
    """
    exact = fraction * counts.astype(np.float64)
    base = np.floor(exact).astype(np.int64)
    total = int(np.floor(fraction * int(counts.sum()) + 0.5))  # round half up
    missing = total - int(base.sum())
    if missing > 0:
        order = np.lexsort((np.arange(len(counts)), -(exact - base)))
        base[order[:missing]] += 1
    return np.minimum(base, counts)


def _class_permutations(y: np.ndarray, num_classes: int, seed: int) -> list[np.ndarray]:
    """Each class's indices in a seeded random order; the first k form a nested family of subsets."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(idx) for idx in class_indices(y, num_classes)]


def stratified_indices(
    y: np.ndarray,
    num_classes: int,
    *,
    fraction: float | None = None,
    per_class: int | None = None,
    seed: int = 0,
    class_names: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Sorted indices of a stratified sample: ``fraction`` of every class, or exactly ``per_class`` each.

    The same ``seed`` always picks the same samples, and ``per_class=k`` is contained in ``per_class=k+1``.
    """
    if (fraction is None) == (per_class is None):
        raise DatasetError("give exactly one of fraction= (0 < fraction <= 1) or per_class= (an int >= 1)")
    counts = np.bincount(y, minlength=num_classes)
    if fraction is not None:
        if not 0.0 < fraction <= 1.0:
            raise DatasetError(f"fraction must be in (0, 1]; received fraction={fraction}")
        take = allocate(counts, fraction)
    else:
        if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
            raise DatasetError(f"per_class must be an int >= 1; received per_class={per_class!r}")
        short = [c for c in range(num_classes) if counts[c] < per_class]
        if short:
            names = class_names or tuple(str(c) for c in range(num_classes))
            detail = ", ".join(f"{names[c]!r} has {counts[c]}" for c in short[:5])
            raise DatasetError(
                f"per_class={per_class} is more than some classes hold ({detail}); "
                f"use per_class<={int(counts.min())} or fraction= instead"
            )
        take = np.full(num_classes, per_class, dtype=np.int64)
    perms = _class_permutations(y, num_classes, seed)
    chosen = [perm[:k] for perm, k in zip(perms, take, strict=True)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def stratified_split(
    y: np.ndarray, num_classes: int, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices; the test part is a stratified ``test_fraction`` of each class."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"the held-out fraction must be in (0, 1); received {test_fraction}")
    test = stratified_indices(y, num_classes, fraction=test_fraction, seed=seed)
    mask = np.ones(len(y), dtype=bool)
    mask[test] = False
    return np.flatnonzero(mask), test
