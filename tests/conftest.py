"""Session-wide test settings: derived model files go to a fresh cache, not the user's."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="gravity-test-cache-")
os.environ["GRAVITY_CACHE"] = _CACHE  # subprocesses (CLI tests) inherit it


def pytest_unconfigure(config) -> None:  # noqa: ARG001
    shutil.rmtree(_CACHE, ignore_errors=True)
