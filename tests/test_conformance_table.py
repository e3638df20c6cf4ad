"""docs/conformance.md must match the tests (regenerate with tools/conformance.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_conformance_table_is_current():
    spec = importlib.util.spec_from_file_location("conformance", ROOT / "tools" / "conformance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.SPEC.is_dir():
        pytest.skip("../shared/spec is not here")
    expected = module.render(module.spec_items(), module.citations())
    assert (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8") == expected, (
        "run: python tools/conformance.py"
    )
