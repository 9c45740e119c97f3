"""Request -> proposal (LLM or planner) -> rule engine -> scene, with a record of what happened."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gravity.plan.planner import plan
from gravity.request import Request
from gravity.rules import Violation, enforce

if TYPE_CHECKING:
    from gravity.llm.runtime import SceneLLM

__all__ = ["SceneResult", "make_scene", "PLANNERS"]

log = logging.getLogger(__name__)

PLANNERS = ("auto", "planner", "llm")


@dataclass(frozen=True)
class SceneResult:
    """A finished scene and how it was made.

    scene : the rule-checked scene document; planner : which proposer produced it
    (``planner`` or ``llm``); violations : what the raw proposal broke (empty = it already
    complied); seconds : wall time of the whole call; meta : model, tokens in/out, time to
    first token, generation time, fallback reason, rules the engine had to enforce.
    """

    scene: dict[str, Any]
    planner: str
    violations: tuple[Violation, ...]
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_compliant(self) -> bool:
        """Whether the raw proposal already kept every hard rule."""
        return not self.violations


def make_scene(request: Request, *, planner: str = "auto", seed: int = 0, llm: "SceneLLM | None" = None) -> SceneResult:
    """Propose and enforce a scene; never fails because a model misbehaved.

    Parameters
    ----------
    request : Request
        Validated request.
    planner : {"auto", "planner", "llm"}
        ``auto`` uses ``llm`` when one is given, else the deterministic planner; ``llm``
        requires one. A failed, timed-out or unusable generation falls back to the planner and
        says so in ``meta["fallback"]``.
    seed : int
        Planner seed; same request + seed -> identical scene (the LLM has its own seed).
    llm : SceneLLM, optional
        A loaded model.

    Raises
    ------
    RuleConflictError
        When the request's hard rules cannot all hold (whatever proposed the scene).
    """
    if planner not in PLANNERS:
        raise ValueError(f"planner must be one of {PLANNERS}, got {planner!r}")
    if planner == "llm" and llm is None:
        raise ValueError("planner 'llm' needs a loaded model")
    t0 = time.perf_counter()
    meta: dict[str, Any] = {}
    proposal, used = None, "planner"
    if llm is not None and planner in ("auto", "llm"):
        prop = llm.propose(request)
        meta.update(prop.stats)
        if prop.scene is not None:
            proposal, used = prop.scene, "llm"
        else:
            meta["fallback"] = prop.error
            log.warning("LLM proposal unusable (%s); using the planner", prop.error)
    if proposal is None:
        proposal = plan(request, seed=seed)
    result = enforce(request, proposal)
    dt = time.perf_counter() - t0
    meta["rules_enforced"] = list(result.rules_enforced)
    log.info(
        "%s: %d objects in %.1f ms, %d rule fixes", used, len(result.scene["objects"]), dt * 1e3, len(result.violations)
    )
    return SceneResult(result.scene, used, result.violations, dt, meta)
