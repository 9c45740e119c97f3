"""The browser monitor and editor for the live bridge (``gravity live --ui``, ``gravity ui``).

:mod:`bridge.ui.server` (aiohttp: the page and its WebSocket, in a background thread),
:mod:`bridge.ui.protocol` (what the page may send: validated, bounded), :mod:`bridge.ui.session`
(what is shown and steered: a running :class:`~bridge.live.LiveBridge` or one scene file),
:mod:`bridge.ui.record` (the producer's accepted edits as JSON Lines: training data), ``static/``
(the page: HTML, vanilla JS drawing SVG, CSS; nothing is fetched at run time). The edits
themselves (rule-checked, kept per section) are :mod:`bridge.edits`.

Names are imported lazily, so ``import bridge.ui`` does not load aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DEFAULT_PORT", "UIServer", "UILimits", "LiveSession", "FileSession", "EditLog", "edits_dir"]

DEFAULT_PORT = 8090
"""``gravity live --ui`` and ``gravity ui`` serve the page on this port unless told otherwise."""

_WHERE = {
    "UIServer": "server",
    "UILimits": "server",
    "LiveSession": "session",
    "FileSession": "session",
    "EditLog": "record",
    "edits_dir": "record",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'bridge.ui' has no attribute {name!r}")
