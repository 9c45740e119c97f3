"""The deterministic proposer: the planner (the training teacher) and the phrase parser.

:func:`plan` turns a request into a scene proposal from the class placement table
(:mod:`gravity.defaults`), section and style; :func:`parse_hint` / :func:`parse_prompt` read
plain-language hints into :class:`Placement` values that the planner and the LLM's grammar
pins both follow. Azimuth degrees positive = left, elevation degrees up, distance metres.

Modules, each importing only those before it: :mod:`~gravity.plan.conventions` (what each
placement word means in numbers: the one table readers and training data share),
:mod:`~gravity.plan.normalise` (text normalisation, the word-once scan),
:mod:`~gravity.plan.lexicon` (regex fragments the readers share), :mod:`~gravity.plan.hint`
(:class:`Placement`, the phrase readers, :func:`parse_hint`), :mod:`~gravity.plan.prompt`
(scene prompts: groups, instrument words, scene-wide exclusions),
:mod:`~gravity.plan.scene_words` (:func:`parse_scene_words`: huge, intimate, vast, drifting...)
and :mod:`~gravity.plan.planner`. Names load
lazily: the phrase readers compile their patterns only when text is read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gravity.plan.hint import Placement, parse_hint
    from gravity.plan.planner import plan, read_hints, text_placed
    from gravity.plan.prompt import parse_prompt
    from gravity.plan.scene_words import SceneWords, parse_scene_words

_WHERE = {
    "plan": "planner",
    "read_hints": "planner",
    "text_placed": "planner",
    "Placement": "hint",
    "parse_hint": "hint",
    "parse_prompt": "prompt",
    "SceneWords": "scene_words",
    "parse_scene_words": "scene_words",
}
__all__ = [
    "Placement",
    "SceneWords",
    "parse_hint",
    "parse_prompt",
    "parse_scene_words",
    "plan",
    "read_hints",
    "text_placed",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"gravity.plan.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'gravity.plan' has no attribute {name!r}")
