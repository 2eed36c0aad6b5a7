"""The test suite's own conventions, which pytest does not enforce."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_module_imports_from_a_conftest() -> None:
    # Several folders have a conftest.py; which one "conftest" names depends on what pytest imported
    # first, so shared helpers live in tests/tk_testing.py instead.
    offenders = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                 if re.search(r"^\s*(from conftest import|import conftest)", p.read_text(), re.MULTILINE)]
    assert offenders == [], f"import shared test helpers from tk_testing, not conftest: {offenders}"


def test_test_file_names_are_unique() -> None:
    # Test folders have no __init__.py: two modules with the same name would collide in sys.modules.
    names = [p.name for p in TESTS.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
