"""Request -> proposal -> rule engine -> scene, with a record of what happened."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .planner import plan
from .request import Request
from .rules import Violation, enforce

__all__ = ["SceneResult", "make_scene", "PLANNERS"]

log = logging.getLogger(__name__)

PLANNERS = ("auto", "planner")


@dataclass(frozen=True)
class SceneResult:
    """A finished scene and how it was made.

    scene : the rule-checked scene document; planner : which proposer produced it;
    violations : what the raw proposal broke (empty = it already complied);
    seconds : wall time of the whole call; meta : proposer-specific numbers.
    """

    scene: dict[str, Any]
    planner: str
    violations: tuple[Violation, ...]
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)


def make_scene(request: Request, *, planner: str = "auto", seed: int = 0) -> SceneResult:
    """Propose and enforce a scene.

    Parameters
    ----------
    request : Request
        Validated request.
    planner : {"auto", "planner"}
        Which proposer to use; ``auto`` picks the best one available (the deterministic
        planner until the LLM runtime lands).
    seed : int
        Seed for the proposer; same request + seed -> identical scene.
    """
    if planner not in PLANNERS:
        raise ValueError(f"planner must be one of {PLANNERS}, got {planner!r}")
    t0 = time.perf_counter()
    proposal = plan(request, seed=seed)
    result = enforce(request, proposal)
    dt = time.perf_counter() - t0
    log.info("planner: %d objects in %.1f ms, %d rule fixes", len(result.scene["objects"]), dt * 1e3, len(result.violations))
    return SceneResult(result.scene, "planner", result.violations, dt)
