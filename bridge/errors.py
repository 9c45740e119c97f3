"""Errors the OSC bridge raises on purpose; all derive from :class:`gravity.errors.GravityError`.

Start-up problems (a port in use, a bad ``--target``, a missing file) raise these with a
message that names the offending value and the fix. Once streaming, the bridge raises nothing:
bad input is counted and logged (rate-limited) instead.
"""

from __future__ import annotations

from gravity.errors import GravityError

__all__ = [
    "BridgeError",
    "PortInUseError",
    "TargetSpecError",
    "OscParseError",
    "OscBuildError",
]


class BridgeError(GravityError):
    """Base class of the bridge's errors."""


class PortInUseError(BridgeError):
    """The UDP port to listen on is taken (or not allowed); the message says which and what to do."""


class TargetSpecError(BridgeError, ValueError):
    """A ``--target`` string could not be understood; the message quotes it and shows the form."""


class OscParseError(BridgeError, ValueError):
    """A datagram is not a well-formed OSC 1.0 packet (the message says where it broke)."""


class OscBuildError(BridgeError, ValueError):
    """A message could not be encoded (bad address, unsupported argument type)."""
