"""OSC bridge: DAW in, ADM-OSC / IEM / SPAT out, and gravity-live (issue #7).

Modules, one concept each: :mod:`bridge.oscio` (OSC codec, UDP sockets), :mod:`bridge.targets`
(output flavours), :mod:`bridge.daw` (DAW listener and dispatch table), :mod:`bridge.transport`
(playhead model and sections), :mod:`bridge.scenes` (object numbering, prepared scenes),
:mod:`bridge.planning` (the planning thread), :mod:`bridge.scheduler` (the frame thread),
:mod:`bridge.live` (the orchestrator and the ``gravity-live`` CLI; ``python -m bridge`` runs it),
:mod:`bridge.preview` (``--preview``: the renderer's streaming player following the bridge).

Names are imported lazily, so ``import bridge`` stays cheap and ``python -m bridge.live`` works.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BridgeError",
    "NotAvailableError",
    "OscParseError",
    "PortInUseError",
    "TargetSpecError",
    "Frame",
    "LiveBridge",
    "LiveConfig",
    "add_arguments",
    "run",
    "TargetSpec",
    "make_target",
    "Marker",
    "Transport",
]

_WHERE = {
    "BridgeError": "errors", "NotAvailableError": "errors", "OscParseError": "errors", "PortInUseError": "errors",
    "TargetSpecError": "errors", "Frame": "frame", "LiveBridge": "live", "LiveConfig": "live",
    "add_arguments": "live", "run": "live", "TargetSpec": "targets", "make_target": "targets",
    "Marker": "transport", "Transport": "transport",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")
