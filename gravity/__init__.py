"""Gravity: spatial scenes for immersive audio.

The request (stems, rules, hints) goes in; a scene (objects with position, width, gain,
sends and motion) comes out, proposed by the deterministic planner (:mod:`gravity.plan`) or a
local LLM (:mod:`gravity.llm`) and made to obey every hard rule by the rule engine
(:mod:`gravity.rules`). Azimuth degrees positive = left, elevation degrees up, distance metres;
motion t is normalised section time.

The contract lives at the top of the package (errors, request, scene, schema, vocab, defaults,
motion, atomic, rules, pipeline); sub-packages are layers above it: ``analysis`` (stems ->
descriptors), ``plan``, ``llm`` and ``cli``. Names load lazily so that ``gravity --help`` stays
fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from gravity.errors import GravityError, Issue, RuleConflictError, ValidationError
    from gravity.pipeline import SceneResult, make_scene
    from gravity.request import Request, Stem
    from gravity.rules import check, enforce
    from gravity.scene import Scene, SceneObject

__version__ = "0.1.0"

_WHERE = {
    "GravityError": "errors",
    "Issue": "errors",
    "ValidationError": "errors",
    "RuleConflictError": "errors",
    "Request": "request",
    "Stem": "request",
    "Scene": "scene",
    "SceneObject": "scene",
    "enforce": "rules",
    "check": "rules",
    "make_scene": "pipeline",
    "SceneResult": "pipeline",
}
__all__ = [
    "GravityError",
    "Issue",
    "ValidationError",
    "RuleConflictError",
    "Request",
    "Stem",
    "Scene",
    "SceneObject",
    "enforce",
    "check",
    "make_scene",
    "SceneResult",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"gravity.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'gravity' has no attribute {name!r}")
