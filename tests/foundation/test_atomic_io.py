"""tinyml_kit._atomic: atomic writes and the RESULTS.md section writer used by every benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tinyml_kit._atomic import atomic_write, write_section, write_text


def test_write_section_appends_then_replaces_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_section(path, "engine", "first")
    assert path.read_text().startswith("# Benchmark results") and "first" in path.read_text()
    path.write_text(path.read_text() + "\n<!-- other:begin -->\nkeep me\n<!-- other:end -->\n")
    write_section(path, "engine", "second\n")
    text = path.read_text()
    assert "second" in text and "first" not in text and "keep me" in text
    assert text.count("<!-- engine:begin -->") == 1 and text.count("<!-- engine:end -->") == 1


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.txt", "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_temporary_keeps_the_suffix_and_mode_is_applied(tmp_path: Path) -> None:
    seen: list[str] = []

    def write(tmp: Path) -> None:
        seen.append(tmp.name)
        tmp.write_bytes(b"x")

    out = atomic_write(tmp_path / "sub" / "m.keras", write, mode=0o644)
    assert seen[0].endswith(".keras") and out.read_bytes() == b"x"
    assert (out.stat().st_mode & 0o777) == 0o644
