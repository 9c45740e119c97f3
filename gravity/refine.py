"""Critic-guided refinement: small moves that release crowded same-band pairs.

A proposal (the model's, the planner's) can leave two objects of the same band within the
critic's crowding angle (:data:`gravity.critic.CROWDED_DEG`): two whooshes whose paths run
9 degrees apart, a flute seated right behind the second violins. :func:`refine` turns one object
of such a pair (its whole path, so a move keeps its shape) a few degrees at a time and keeps a
move only when it breaks no hard rule (:func:`gravity.rules.check`) and the critic's rank key
(adherence to the text first, then the card's score) gets strictly better. What is never moved: the lead, the low end,
stems the text placed, and objects a rule pins (the rule engine would put them back anyway).
A mirrored pair (``gtr_l`` / ``gtr_r`` at +-a) turns together, so its symmetry holds.

Greedy first-improvement over a handful of angles per crowded pair, bounded by
:data:`MAX_ROUNDS` accepted moves and :data:`MAX_TRIALS` judged turns (a work bound, not a time
bound: the same input gives the same scene on any machine).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gravity.critic import Card, critique, crowded_pairs
from gravity.motion import wrap_az
from gravity.request import Request
from gravity.rules import check
from gravity.vocab import LOW_CLASSES

__all__ = ["Refinement", "refine", "STEPS_DEG", "MAX_ROUNDS", "MAX_TRIALS"]

log = logging.getLogger(__name__)

STEPS_DEG = (4.0, 8.0, 12.0, 16.0, 24.0)  # trial turns each way, degrees (the crowding angle is 15)
MAX_ROUNDS = 12  # accepted moves at most: each releases at least one pair or raises the score
MAX_TRIALS = (
    60  # turns judged at most (~3-5 ms each on 2 cores): a work bound, so the result never depends on the clock
)
MIRROR_TOL_DEG = 2.0  # two objects at +-a (and the same height) within this are a mirrored pair
PINNING_RULES = ("anchor", "zone", "motion")  # rule types that fix where a stem is


@dataclass(frozen=True)
class Refinement:
    """What :func:`refine` did.

    scene : the refined scene (the input when nothing helped); card : its critic card;
    before : the input's card; moves : ``"id +8 deg"`` per accepted move, in order.
    """

    scene: dict[str, Any]
    card: Card
    before: Card
    moves: tuple[str, ...]


def _fixed(request: Request, keep: Collection[str]) -> set[str]:
    """Stem ids refinement must not move: leads, low end, rule-pinned, and stems the text
    placed one by one (a group the text spreads, "the orchestra in front", may move within
    what it asked: the critic's adherence judges that).
    """
    from gravity.plan.planner import read_hints  # memoised on the text: the critic reads it too

    grouped = {sid for sid, p in read_hints(request).items() if len(p.group) > 1}
    out = (set(keep) - grouped) | set(request.lead_ids)
    out |= {s.id for s in request.stems if s.cls in LOW_CLASSES}
    for r in request.rules:
        if r.get("type") in PINNING_RULES:
            out |= {s.id for s in request.stems if r.get("track_id") == s.id or r.get("track_class") == s.cls}
    return out


def _movable(obj: dict[str, Any], fixed: set[str]) -> bool:
    return not (set(obj.get("stems") or [obj["id"]]) & fixed)


def _mirror(objs: list[dict[str, Any]], i: int) -> int | None:
    """Index of the object mirrored with ``objs[i]`` (same class, az -a, same height), if any."""
    o = objs[i]
    if abs(o["az_deg"]) < MIRROR_TOL_DEG or o.get("motion") and len(o["motion"]) > 2:
        return None
    for j, p in enumerate(objs):
        if j != i and p.get("class") == o.get("class") and abs(p["az_deg"] + o["az_deg"]) < MIRROR_TOL_DEG:
            if abs(p["el_deg"] - o["el_deg"]) < MIRROR_TOL_DEG:
                return j
    return None


def _turned(scene: dict[str, Any], moves: list[tuple[int, float]]) -> dict[str, Any]:
    """A copy of ``scene`` with object i's whole path turned by d degrees for each (i, d)."""
    out = copy.deepcopy(scene)
    for i, d in moves:
        o = out["objects"][i]
        o["az_deg"] = float(wrap_az(o["az_deg"] + d))
        for k in o.get("motion") or []:
            k["az_deg"] = float(wrap_az(k["az_deg"] + d))
    return out


def refine(
    request: Request, scene: dict[str, Any], keep: Collection[str] = (), max_trials: int = MAX_TRIALS
) -> Refinement:
    """Release crowded same-band pairs in a rule-checked ``scene`` by small turns the critic
    approves.

    For each crowded pair (closest first), each movable member, the smallest turn in
    :data:`STEPS_DEG` (either way) that raises the critic's rank key is taken; then the pairs
    are read again. The smallest helpful move is the musical one: the scene keeps its shape.

    Parameters
    ----------
    request : Request
        The request the scene answers.
    scene : dict
        A rule-checked scene document (azimuth degrees, + = left); not changed.
    keep : collection of str
        Stems the text placed (:func:`gravity.plan.planner.text_placed`): those placed one by
        one are never moved.
    max_trials : int
        Turns judged at most; the best scene found by then is returned.

    Returns
    -------
    Refinement
        The best scene found (the input when no move helps) and its card.
    """
    budget = [max_trials]  # shared by the rounds
    before = best_card = critique(request, scene)
    best, moves = scene, []
    fixed = _fixed(request, keep)
    for _ in range(MAX_ROUNDS):
        found = _one_move(request, best, best_card, fixed, budget)
        if found is None:
            break
        best, best_card, what = found
        moves.append(what)
    if moves:
        log.info("refined: %s; critic %.3f -> %.3f", ", ".join(moves), before.score, best_card.score)
    return Refinement(best, best_card, before, tuple(moves))


def _one_move(
    request: Request,
    scene: dict[str, Any],
    card: Card,
    fixed: set[str],
    budget: list[int],
) -> tuple[dict[str, Any], Card, str] | None:
    """The first (smallest) turn that raises the rank key, or None (none, or ``budget[0]``
    judged turns used up).
    """
    objs = scene["objects"]
    index = {o["id"]: i for i, o in enumerate(objs)}
    tried: set[str] = set()
    for a, b, _deg in crowded_pairs(request, scene):
        for oid in (a, b):
            i = index[oid]
            if oid in tried or not _movable(objs[i], fixed):
                continue
            tried.add(oid)
            j = _mirror(objs, i)
            if j is not None and not _movable(objs[j], fixed):
                continue
            for step in STEPS_DEG:
                for d in (step, -step):
                    if budget[0] <= 0:
                        return None
                    trial = _turned(scene, [(i, d)] + ([(j, -d)] if j is not None else []))
                    if check(request, trial, schema=False):  # the turn broke a hard rule
                        continue
                    budget[0] -= 1
                    new = critique(request, trial)
                    if new.rank_key > card.rank_key:
                        return trial, new, f"{oid} {d:+g} deg"
    return None
