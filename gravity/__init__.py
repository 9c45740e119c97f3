"""Gravity: spatial scenes for immersive audio.

The request (stems, rules, hints) goes in; a scene (objects with position, width, gain,
sends and motion) comes out, proposed by the deterministic planner or a local LLM and made to
obey every hard rule by the rule engine. Azimuth degrees positive = left, elevation degrees
up, distance metres; motion t is normalised section time.
"""

from .errors import GravityError, Issue, RuleConflictError, ValidationError
from .pipeline import SceneResult, make_scene
from .request import Request, Stem
from .rules import check, enforce
from .scene import Scene, SceneObject

__all__ = [
    "GravityError", "Issue", "ValidationError", "RuleConflictError",
    "Request", "Stem", "Scene", "SceneObject",
    "enforce", "check", "make_scene", "SceneResult",
]
__version__ = "0.1.0"
