"""What the text forbids, applied to any proposal: the zones a stem must stay out of and its
width cap ("nothing behind me", "keep the pads out of the height", "not too wide").

The planner keeps these limits while it places (:func:`escape`); a model's proposal gets them
through :func:`apply_text_limits` before the rule engine, so the text outranks the proposer
whichever proposed. Angles in degrees (azimuth positive = left); regions are
:data:`gravity.rules.REGIONS`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Mapping

import numpy as np

from gravity.motion import angle_between
from gravity.request import Request
from gravity.rules import in_region

__all__ = ["escape", "apply_text_limits", "limit_to_text"]

_MARGIN_DEG = 5.0  # how far inside the allowed space an escaped direction lands


@functools.cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Candidate directions every 5 degrees (az, el) for moving an object out of a zone."""
    az, el = np.meshgrid(np.arange(-175.0, 181.0, 5.0), np.arange(-30.0, 81.0, 5.0))
    return az.ravel(), el.ravel()


def escape(az: float, el: float, avoid: tuple[str, ...]) -> tuple[float, float]:
    """The nearest direction to (az, el) degrees outside every region in ``avoid`` (with a
    5-degree margin); (az, el) itself when it is outside already or nothing is left.
    """
    if not any(bool(in_region(r, az, el)) for r in avoid):
        return az, el
    gaz, gel = _grid()
    ok = np.ones(gaz.shape, dtype=bool)
    for r in avoid:
        ok &= ~in_region(r, gaz, gel, grow=_MARGIN_DEG)
    if not ok.any():
        return az, el
    d = angle_between(az, el, gaz[ok], gel[ok])
    k = int(np.argmin(d))
    return float(gaz[ok][k]), float(gel[ok][k])


def apply_text_limits(proposal: Any, hints: Mapping[str, Any]) -> Any:
    """A copy of ``proposal`` (a scene document) whose objects keep what ``hints`` forbids.

    ``hints`` is :func:`gravity.plan.planner.read_hints`'s reading (stem id -> Placement). An
    object (its ``stems``, or its id) takes the union of its stems' ``avoid`` regions and the
    smallest ``max_width``; every keyframe leaves the avoided regions by the shortest way and
    the object's width is capped. Anything malformed is left for the rule engine to sanitise.
    """
    if not isinstance(proposal, Mapping) or not isinstance(proposal.get("objects"), list):
        return proposal
    out = copy.deepcopy(dict(proposal))
    for o in out["objects"]:
        if not isinstance(o, dict):
            continue
        members = o.get("stems")
        ids: list[Any] = members if isinstance(members, list) else [o.get("id")]
        placements = [hints[i] for i in ids if isinstance(i, str) and i in hints]
        avoid = tuple(sorted({r for p in placements for r in getattr(p, "avoid", ())}))
        caps = [p.max_width for p in placements if getattr(p, "max_width", None) is not None]
        if caps and isinstance(o.get("width"), (int, float)):
            o["width"] = min(float(o["width"]), min(caps))
        if not avoid:
            continue
        for k in o.get("motion") or []:
            if isinstance(k, dict) and all(isinstance(k.get(f), (int, float)) for f in ("az_deg", "el_deg")):
                k["az_deg"], k["el_deg"] = escape(float(k["az_deg"]), float(k["el_deg"]), avoid)
        if all(isinstance(o.get(f), (int, float)) for f in ("az_deg", "el_deg")):
            o["az_deg"], o["el_deg"] = escape(float(o["az_deg"]), float(o["el_deg"]), avoid)
    return out


def limit_to_text(request: Request, proposal: Any) -> Any:
    """``proposal`` (a model's scene document, which did not read the text itself) with what the
    request's text forbids applied (:func:`apply_text_limits` on the phrase parser's reading);
    the proposal as it is when the request has no text.
    """
    if not request.prompt and not any(s.hint for s in request.stems):
        return proposal
    from gravity.plan.planner import read_hints  # deferred: the planner imports this module

    return apply_text_limits(proposal, read_hints(request))
