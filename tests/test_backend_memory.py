"""The in-memory backend (for plugin tests) passes the shipped conformance suite."""

from __future__ import annotations

import pytest

from jmapcore.testing.backend_conformance import *  # noqa: F401,F403
from jmapcore.testing.memory import MemoryBackend


@pytest.fixture
def backend():
    instance = MemoryBackend()
    yield instance
    instance.close()
