"""The test tree stays collectable as one suite: test folders have no ``__init__.py`` (pytest's
rootdir import mode), so two test modules with one basename break collection of the whole run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("*.py") if p.name != "conftest.py")
    assert [n for n, c in names.items() if c > 1] == []
