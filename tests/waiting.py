"""Helpers for tests that run real sockets and threads: a free loopback port, polling with a deadline."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable


def free_port() -> int:
    """A UDP port on 127.0.0.1 that nothing was bound to a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred: Callable[[], Any], timeout_s: float, what: str, step_s: float = 0.002) -> Any:
    """Poll ``pred`` every ``step_s`` seconds until it is truthy (returned) or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
