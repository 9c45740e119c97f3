"""The browser UI's WebSocket messages: every one the page sends is untrusted until it passes here.

:func:`parse` turns one text message into a :class:`Command` or raises :class:`Refused` with a
reason from a fixed vocabulary (:data:`REASONS`, safe as a rate-limited log kind). It bounds
before it allocates: the size first (:data:`MAX_MESSAGE_BYTES`), then JSON without ``NaN`` or
``Infinity``, nesting cut short by the decoder's recursion limit, then the exact shape of each
message type (no unknown keys, ids as the scene schema spells them, strings within the request
schema's lengths, finite numbers within the scene schema's ranges).

Messages the page sends (JSON objects; ``ref`` is an optional integer echoed in the answer)::

    {"type": "move",   "id": OBJ, "az": deg (+left), "el": deg, "dist": m}
    {"type": "set",    "id": OBJ, "width": 0..1, "gain_db": -60..12}   (either or both)
    {"type": "lock",   "id": OBJ, "locked": true|false}
    {"type": "reset",  "id": OBJ}
    {"type": "prompt", "text": up to 2000 characters}   (re-plans every section)
    {"type": "hint",   "stem": STEM, "text": up to 500 characters}
    {"type": "ping"}

:class:`TokenBucket` bounds the rate of messages a connection may send.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from bridge.edits import LIMITS, Edit
from bridge.planning import MAX_HINT_CHARS, MAX_PROMPT_CHARS

__all__ = ["MAX_MESSAGE_BYTES", "REASONS", "Command", "Refused", "parse", "TokenBucket"]

MAX_MESSAGE_BYTES = 16 * 1024
"""Longest message accepted, bytes (a 2000-character prompt, every character JSON-escaped, fits)."""

REASONS = ("size", "binary", "json", "shape", "type", "field", "value", "rate", "host", "token", "origin")
"""Why a message or request was dropped (the rate-limited log's kinds are ``ui-`` + one of these)."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")  # the scene schema's id
_MAX_REF = 2**31 - 1

# message type -> (required keys, optional keys)
_SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "move": (frozenset({"id", "az", "el", "dist"}), frozenset()),
    "set": (frozenset({"id"}), frozenset({"width", "gain_db"})),
    "lock": (frozenset({"id", "locked"}), frozenset()),
    "reset": (frozenset({"id"}), frozenset()),
    "prompt": (frozenset({"text"}), frozenset()),
    "hint": (frozenset({"stem", "text"}), frozenset()),
    "ping": (frozenset(), frozenset()),
}


class Refused(ValueError):
    """A message that is dropped; ``reason`` is one of :data:`REASONS`, ``detail`` says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Command:
    """One valid message.

    Attributes
    ----------
    kind : str
        The message type (``move``, ``set``, ``lock``, ``reset``, ``prompt``, ``hint``, ``ping``).
    ref : int or None
        The page's reference, echoed in the answer.
    edit : Edit or None
        For ``move``, ``set``, ``lock`` and ``reset``.
    stem : str
        For ``hint``.
    text : str
        For ``prompt`` and ``hint``.
    """

    kind: str
    ref: int | None = None
    edit: Edit | None = None
    stem: str = ""
    text: str = ""


def _no_constant(name: str) -> Any:
    raise Refused("json", f"{name} is not JSON")


def _number(d: dict[str, Any], key: str) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Refused("field", f"{key} must be a number")
    if isinstance(v, int) and abs(v) > 1e9:
        raise Refused("value", f"{key} out of range")
    x = float(v)
    if not math.isfinite(x):
        raise Refused("value", f"{key} must be finite")
    lo_hi = LIMITS.get({"el": "el_deg", "dist": "dist_m"}.get(key, key))
    if lo_hi is not None and not lo_hi[0] <= x <= lo_hi[1]:
        raise Refused("value", f"{key} {x:g} outside {lo_hi[0]:g}..{lo_hi[1]:g}")
    return x


def _ident(d: dict[str, Any], key: str) -> str:
    v = d[key]
    if not isinstance(v, str) or not _ID.fullmatch(v):
        raise Refused("field", f"{key} must be an id (letters, digits, _ . -; 64 at most)")
    return v


def _text(d: dict[str, Any], key: str, limit: int) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise Refused("field", f"{key} must be a string")
    if len(v) > limit:
        raise Refused("value", f"{key} longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n" for c in v):
        raise Refused("value", f"{key} has control characters")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no file or log could hold it
        raise Refused("value", f"{key} is not valid Unicode") from None
    return v


def parse(message: str | bytes) -> Command:
    """One WebSocket message -> :class:`Command`; raises :class:`Refused` (never anything else).

    Parameters
    ----------
    message : str or bytes
        The message as received; bytes (a binary frame) are refused.
    """
    if not isinstance(message, str):
        raise Refused("binary", "binary messages are not accepted")
    if len(message) > MAX_MESSAGE_BYTES or len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise Refused("size", f"longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        d = json.loads(message, parse_constant=_no_constant)
    except Refused:
        raise
    except RecursionError:
        raise Refused("json", "nested too deeply") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, invalid surrogates
        raise Refused("json", str(exc)[:80]) from None
    if not isinstance(d, dict):
        raise Refused("shape", "a message is a JSON object")
    kind = d.get("type")
    if not isinstance(kind, str) or kind not in _SHAPES:
        raise Refused("type", "unknown message type")
    need, may = _SHAPES[kind]
    keys = set(d) - {"type", "ref"}
    if not need <= keys:
        raise Refused("shape", f"{kind} needs {', '.join(sorted(need - keys))}")
    if keys - need - may:
        raise Refused("shape", f"{kind} takes no other keys")
    ref = d.get("ref")
    if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref <= _MAX_REF):
        raise Refused("field", "ref must be a non-negative integer")
    if kind == "ping":
        return Command(kind, ref)
    if kind == "prompt":
        return Command(kind, ref, text=_text(d, "text", MAX_PROMPT_CHARS))
    if kind == "hint":
        return Command(kind, ref, stem=_ident(d, "stem"), text=_text(d, "text", MAX_HINT_CHARS))
    oid = _ident(d, "id")
    try:
        if kind == "move":
            edit = Edit(oid, position=(_number(d, "az"), _number(d, "el"), _number(d, "dist")))
        elif kind == "set":
            if not keys & may:
                raise Refused("shape", "set needs width or gain_db")
            edit = Edit(
                oid,
                width=_number(d, "width") if "width" in d else None,
                gain_db=_number(d, "gain_db") if "gain_db" in d else None,
            )
        elif kind == "lock":
            if not isinstance(d["locked"], bool):
                raise Refused("field", "locked must be true or false")
            edit = Edit(oid, locked=d["locked"])
        else:
            edit = Edit(oid, reset=True)
    except ValueError as exc:
        if isinstance(exc, Refused):
            raise
        raise Refused("value", str(exc)[:80]) from None
    return Command(kind, ref, edit=edit)


class TokenBucket:
    """At most ``rate`` events a second on average, ``burst`` at once (one connection's messages).

    Parameters
    ----------
    rate : float
        Tokens added per second.
    burst : float
        Bucket size.
    clock : callable
        Monotonic clock, seconds.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._tokens = float(burst)
        self._t = clock()

    def take(self) -> bool:
        """Spend one token; False (nothing spent) when the bucket is empty."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
