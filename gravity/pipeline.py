"""Request -> proposal (LLM or planner) -> rule engine -> scene, with a record of what happened."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gravity.plan.limits import limit_to_text
from gravity.plan.planner import plan, text_placed
from gravity.errors import RuleConflictError
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
        says so in ``meta["fallback"]``. With ``llm.config.candidates`` N >= 2 the model's
        answer, the planner's scene and N - 2 more model samples are rule-checked and the scene
        critic picks one (:func:`_choose`; ``SceneResult.planner`` says whose it is), then
        :func:`gravity.refine.refine` releases its crowded same-band pairs where the critic
        approves (``meta["refined"]``); 1 = the model's answer alone.
    seed : int
        Planner seed; same request + seed -> identical scene (the LLM has its own seed).
    llm : SceneLLM, optional
        A loaded model.

    Raises
    ------
    RuleConflictError
        When the request's hard rules cannot all hold (whatever proposed the scene). A candidate
        the rules cannot be made to hold while another can is dropped (``meta["dropped"]``).
    """
    if planner not in PLANNERS:
        raise ValueError(f"planner must be one of {PLANNERS}, got {planner!r}")
    if planner == "llm" and llm is None:
        raise ValueError("planner 'llm' needs a loaded model")
    t0 = time.perf_counter()
    meta: dict[str, Any] = {}
    cands: list[tuple[str, Any]] = []  # (proposer, raw proposal)
    n = 1
    if llm is not None and planner in ("auto", "llm"):
        n = max(1, int(getattr(llm.config, "candidates", 1)))
        props = llm.propose_many(request, 1 + max(0, n - 2)) if n > 2 else [llm.propose(request)]
        meta.update(props[0].stats)
        # what the text forbids holds for the model's scenes too (the planner keeps it itself)
        cands = [("llm", limit_to_text(request, p.scene)) for p in props if p.scene is not None]
        if not cands:
            meta["fallback"] = props[0].error
            log.warning("LLM proposal unusable (%s); using the planner", props[0].error)
    if not cands or n >= 2:
        cands.append(("planner", plan(request, seed=seed)))
    keep = text_placed(request)  # the budget folds the stems the text is silent on first
    results, planner_conflict = [], None
    for who, prop in cands:
        try:
            results.append((who, enforce(request, prop, keep)))
        except RuleConflictError as exc:
            # a proposal whose grouping the rules cannot hold, where another's can: drop it
            log.warning("a %s candidate cannot be made to hold the rules (%s); dropped", who, exc)
            meta.setdefault("dropped", []).append(f"{who}: {exc}")
            planner_conflict = exc if who == "planner" else planner_conflict
    if not results:  # every candidate dropped: the planner's scene, else its conflict is the answer
        if planner_conflict is not None:
            raise planner_conflict
        meta["fallback"] = "the model's scene could not be made to hold the rules"
        results.append(("planner", enforce(request, plan(request, seed=seed), keep)))
    pick = 0
    if len(results) > 1:
        pick = _choose(request, results, meta)
    used, result = results[pick]
    scene = result.scene
    if n >= 2:  # critic-guided: the chosen scene's crowded pairs released by small turns
        from gravity.refine import refine  # deferred: only with candidates

        ref = refine(request, scene, keep)
        if ref.moves:
            scene = ref.scene
            meta["refined"] = {
                "moves": list(ref.moves),
                "critic": [round(ref.before.score, 3), round(ref.card.score, 3)],
            }
    dt = time.perf_counter() - t0
    meta["rules_enforced"] = list(result.rules_enforced)
    log.info("%s: %d objects in %.1f ms, %d rule fixes", used, len(scene["objects"]), dt * 1e3, len(result.violations))
    return SceneResult(scene, used, result.violations, dt, meta)


def _choose(request: Request, results: list[tuple[str, Any]], meta: dict[str, Any]) -> int:
    """Index of the best rule-checked candidate by the scene critic: adherence to the text
    first, then the card's score; ties go to the earlier candidate (the model's first answer).
    Every candidate's numbers go to ``meta["candidates"]``.
    """
    from gravity.critic import critique  # deferred: only when there is a choice to make

    cards = [critique(request, r.scene) for _, r in results]
    keys = [c.rank_key for c in cards]
    pick = max(range(len(keys)), key=lambda i: (keys[i], -i))
    meta["candidates"] = [
        {"proposer": who, "adherence": round(c.adherence, 3), "score": round(c.score, 3), "chosen": i == pick}
        for i, ((who, _), c) in enumerate(zip(results, cards, strict=True))
    ]
    return pick
