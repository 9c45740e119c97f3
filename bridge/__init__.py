"""OSC bridge: DAW in, ADM-OSC / IEM / SPAT out, and gravity-live (issue #7).

Modules, one concept each: :mod:`bridge.oscio` (OSC codec, UDP sockets), :mod:`bridge.targets`
(output flavours), :mod:`bridge.daw` (DAW listener and dispatch table), :mod:`bridge.transport`
(playhead model and sections), :mod:`bridge.scenes` (object numbering, prepared scenes),
:mod:`bridge.planning` (the planning thread), :mod:`bridge.files` (the one gate for files that
OSC commands name), :mod:`bridge.scheduler` (the frame thread),
:mod:`bridge.live` (the orchestrator), :mod:`bridge.preview` (``--preview``: the renderer's
player following the bridge through a narrow :class:`~bridge.preview.PreviewSource`),
:mod:`bridge.edits` (hand edits: rule-checked, kept per section), :mod:`bridge.ui` (``--ui``: the
browser monitor and editor).
The command line is ``gravity live`` (:mod:`gravity.cli.live`).

Names are imported lazily, so ``import bridge`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BridgeError",
    "OscParseError",
    "PortInUseError",
    "TargetSpecError",
    "Frame",
    "LiveBridge",
    "LiveConfig",
    "LivePreview",
    "PreviewSource",
    "TargetSpec",
    "make_target",
    "Marker",
    "Transport",
]

_WHERE = {
    "BridgeError": "errors",
    "OscParseError": "errors",
    "PortInUseError": "errors",
    "TargetSpecError": "errors",
    "Frame": "frame",
    "LiveBridge": "live",
    "LiveConfig": "live",
    "LivePreview": "preview",
    "PreviewSource": "preview",
    "TargetSpec": "targets",
    "make_target": "targets",
    "Marker": "transport",
    "Transport": "transport",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")
