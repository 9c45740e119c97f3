"""A producer's taste (issue 20): ``gravity eval --edits DIR`` and a simulated producer.

``gravity eval --edits DIR`` asks a model (or ``--model planner``) for a scene for the request of
each held-out edit in the live UI's logs, enforces the hard rules, and measures how far its
proposal is from the producer's edited scene: the great-circle angle, in degrees, between the
start positions (keyframe t = 0) of the objects holding the same stem in the two scenes (an
object may hold several stems; the comparison is per stem). Reported over the stems the
producer **moved** (their proposed and edited positions more than :data:`MOVED_DEG` apart) and
over **all** stems, next to the same numbers for the logged proposal (the "before"), with the
share of final scenes that pass :func:`gravity.rules.check` (must be 100 %) and the critic's mean
score.

The logs are read through :mod:`training.edits` (same hostile-input rules, the last row of each
section counts) and split as ``gravity data --from-edits`` splits them: ``split="val"`` (the
default) scores the rows that data would hold out of training; ``"all"`` scores every row, for
logs that were never trained on (e.g. edits of new songs); ``"train"`` the rest.

:func:`producer` is a deterministic producer whose taste differs from the planner's in two
stated ways, used by ``benchmarks/taste.py`` and the tests to show that DPO on a producer's
edits moves the model towards them:

1. drum-family stems except the kick sit **around the listener**, to the sides and rear
   (:data:`DRUM_PLACES`: snare +90, hi-hat -90, overheads +-110, toms across +-100..+-150,
   percussion at +-150 and 180, ...), where the planner keeps them in the front half;
2. backing vocals and choirs sit **above**: elevation :data:`ABOVE_EL_DEG`, azimuth kept.

Everything else is left as proposed. An object is moved only when every stem it holds is one of
these (a producer drags objects, not stems), to the place of its first such stem; the edited
scene then goes through :func:`gravity.rules.enforce`, as an edit in the live UI does.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from gravity.critic import critique
from gravity.errors import GravityError, RuleConflictError
from gravity.motion import angle_between, wrap_az
from gravity.request import Request
from gravity.rules import check, enforce

from training.evaluate import EvalConfig, _host_kf, final_scene, named_proposer

if TYPE_CHECKING:
    from gravity.llm.config import LLMConfig

__all__ = [
    "DRUM_PLACES",
    "ABOVE_CLASSES",
    "ABOVE_EL_DEG",
    "MOVED_DEG",
    "EDIT_SPLITS",
    "taste_targets",
    "producer",
    "moved_stems",
    "held_out_edits",
    "score_edits",
    "evaluate_edits",
    "markdown_edits",
]

log = logging.getLogger(__name__)

# (azimuth, elevation) in degrees, + = left, for the 1st, 2nd, ... stem of a class in request order
DRUM_PLACES: dict[str, tuple[tuple[float, float], ...]] = {
    "snare": ((90.0, 0.0), (-90.0, 0.0)),
    "hihat": ((-90.0, 10.0), (90.0, 10.0)),
    "clap": ((120.0, 0.0), (-120.0, 0.0)),
    "cymbal": ((-135.0, 20.0), (135.0, 20.0)),
    "overheads": ((110.0, 30.0), (-110.0, 30.0)),
    "tom": ((100.0, 0.0), (-100.0, 0.0), (150.0, 0.0), (-150.0, 0.0)),
    "percussion": ((150.0, 0.0), (-150.0, 0.0), (180.0, 0.0)),
    "drum_loop": ((-120.0, 0.0), (120.0, 0.0)),
    "room_mic": ((180.0, 20.0), (160.0, 20.0), (-160.0, 20.0)),
}
"""The simulated producer's drums: every drum-family class but the kick, around the listener."""
ABOVE_CLASSES: tuple[str, ...] = ("backing_vocal", "choir")
"""Classes the simulated producer lifts above the listener, keeping their azimuth."""
ABOVE_EL_DEG = 40.0
"""Their elevation, degrees (in the 35-45 degree height layer)."""
MOVED_DEG = 1.0
"""A stem whose proposed and edited start positions differ by more than this (degrees) was moved."""
EDIT_SPLITS = ("val", "train", "all")


def taste_targets(request: Request) -> dict[str, tuple[float | None, float]]:
    """Stem id -> (azimuth or None = keep the proposed one, elevation), degrees, for every stem the
    simulated producer's taste concerns (:data:`DRUM_PLACES`, :data:`ABOVE_CLASSES`).
    """
    seen: Counter[str] = Counter()
    out: dict[str, tuple[float | None, float]] = {}
    for s in request.stems:
        if s.cls in DRUM_PLACES:
            places = DRUM_PLACES[s.cls]
            az, el = places[seen[s.cls] % len(places)]
            out[s.id] = (az, el)
        elif s.cls in ABOVE_CLASSES:
            out[s.id] = (None, ABOVE_EL_DEG)
        seen[s.cls] += 1
    return out


def _members(o: Mapping[str, Any]) -> list[str]:
    return list(o.get("stems") or [o["id"]])


def producer(request: Request, scene: Mapping[str, Any]) -> dict[str, Any]:
    """The simulated producer's edit of ``scene`` (a scene that obeys ``request``'s rules).

    Every object whose stems all belong to the taste (:func:`taste_targets`) moves to its first
    stem's place: azimuth set (drums; a moving object's path is shifted by the same angle) or kept
    (backing vocals), elevation set at every keyframe; distance, width, gains, sends and every
    other object stay as proposed. The edit then goes through :func:`gravity.rules.enforce`
    (keeping the moved stems' places where the budget groups), so the result obeys the hard rules;
    it equals ``scene`` when the proposal already matched the taste.

    Raises
    ------
    RuleConflictError
        When the request's rules cannot all hold (as :func:`gravity.rules.enforce`).
    """
    from gravity.plan.planner import text_placed

    targets = taste_targets(request)
    doc = copy.deepcopy(dict(scene))
    moved: set[str] = set()
    for o in doc["objects"]:
        members = _members(o)
        if not all(m in targets for m in members):
            continue
        az, el = targets[members[0]]
        path = o.get("motion") or [{"t": 0.0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}]
        turn = 0.0 if az is None else float(wrap_az(az - path[0]["az_deg"]))
        for k in path:
            k["az_deg"] = round(float(wrap_az(k["az_deg"] + turn)), 1)
            k["el_deg"] = el
        if o.get("motion"):
            o["motion"] = path
        o["az_deg"], o["el_deg"] = path[0]["az_deg"], path[0]["el_deg"]
        moved.update(members)
    if not moved:
        return doc
    return enforce(request, doc, moved | text_placed(request)).scene


def _start(scene: Mapping[str, Any], stem_id: str) -> tuple[float, float] | None:
    """(azimuth, elevation) in degrees at t = 0 of the object holding ``stem_id`` (None: no such)."""
    kf = _host_kf(scene, stem_id)
    return None if kf is None else (float(kf[0, 1]), float(kf[0, 2]))


def _angle(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    return None if a is None or b is None else float(angle_between(a[0], a[1], b[0], b[1]))


def moved_stems(proposed: Mapping[str, Any], edited: Mapping[str, Any]) -> dict[str, float]:
    """Stem id -> degrees it moved from ``proposed`` to ``edited``, for the stems moved by more
    than :data:`MOVED_DEG` (start positions).
    """
    out = {}
    for o in edited.get("objects", []):
        for m in _members(o):
            d = _angle(_start(proposed, m), _start(edited, m))
            if d is not None and d > MOVED_DEG:
                out[m] = round(d, 2)
    return out


def held_out_edits(folder: str | Path, split: str = "val") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The edit-log rows of ``split`` (:data:`EDIT_SPLITS`; the split of ``gravity data
    --from-edits``), one per edited section, and the reading's stats.

    Raises
    ------
    GravityError
        When ``folder`` is not a folder of logs, or ``split`` names no rows.
    """
    from training.edits import edit_groups, edit_splits

    if split not in EDIT_SPLITS:
        raise GravityError(f"edits split {split!r}: expected one of {', '.join(EDIT_SPLITS)}")
    groups, stats = edit_groups(folder)
    splits = edit_splits(groups)
    rows = [g[4] for g, s in zip(groups, splits, strict=True) if split in ("all", s)]
    if not rows:
        raise GravityError(
            f"{folder}: no {split} edits ({stats['groups']} edited sections of {stats['rows']} rows, "
            f"skipped: {stats['skipped'] or 'none'})"
            + ("; --edits-split all scores every row" if split != "all" else "")
        )
    return rows, stats


def _summary(v: list[float]) -> dict[str, float | int | None]:
    if not v:
        return {"mean": None, "median": None, "n": 0}
    return {"mean": round(float(np.mean(v)), 2), "median": round(float(np.median(v)), 2), "n": len(v)}


Propose = Callable[[Request], tuple[str | None, dict[str, Any] | None, dict[str, Any]]]


def score_edits(rows: Iterable[Mapping[str, Any]], propose: Propose, label: str) -> dict[str, Any]:
    """Score ``propose(request) -> (text | None, scene | None, stats)`` against edit-log rows.

    Returns the report: ``to_edit`` (the final scene's angle to the edited scene, degrees, over
    ``moved`` and ``all`` stems: mean, median, n), ``before`` (the same for the logged proposal),
    ``rules_pass`` (% of final scenes passing :func:`gravity.rules.check`), ``raw_rules_pass``
    (% of raw proposals), ``critic`` (mean score of the final, proposed and edited scenes) and
    ``stems``: one entry per stem (row index, id, class, moved, ``angle_deg``, ``before_deg``).
    """

    stems: list[dict[str, Any]] = []
    passed: list[bool] = []
    raw_passed: list[bool] = []
    scores: dict[str, list[float]] = {"model": [], "proposed": [], "edited": []}
    latency: list[float] = []
    rows = list(rows)
    for i, row in enumerate(rows):
        request = Request.from_dict(row["request"])
        proposed, edited = row["proposed"], row["edited"]
        _, scene, stats = propose(request)
        if stats.get("total_s") is not None:
            latency.append(float(stats["total_s"]))
        raw_passed.append(scene is not None and not check(request, scene))
        try:  # the planner stands in for an unusable text, as gravity.pipeline.make_scene does
            final = final_scene(request, scene)
        except RuleConflictError as exc:
            log.warning("edit row %d: %s", i, exc)
            passed.append(False)
            continue
        passed.append(not check(request, final))
        scores["model"].append(critique(request, final).score)
        scores["proposed"].append(critique(request, proposed).score)
        scores["edited"].append(critique(request, edited).score)
        for s in request.stems:
            target, before = _start(edited, s.id), _start(proposed, s.id)
            after = _angle(_start(final, s.id), target)
            moved = _angle(before, target)
            if after is None or moved is None:
                continue
            stems.append(
                {
                    "row": i,
                    "stem": s.id,
                    "class": s.cls,
                    "moved": moved > MOVED_DEG,
                    "angle_deg": round(after, 2),
                    "before_deg": round(moved, 2),
                }
            )

    def pick(key: str, moved_only: bool) -> list[float]:
        return [float(s[key]) for s in stems if s["moved"] or not moved_only]

    return {
        "label": label,
        "edits": len(rows),
        "stems": stems,
        "to_edit": {"moved": _summary(pick("angle_deg", True)), "all": _summary(pick("angle_deg", False))},
        "before": {"moved": _summary(pick("before_deg", True)), "all": _summary(pick("before_deg", False))},
        "rules_pass": round(100.0 * float(np.mean(passed)), 1) if passed else None,
        "raw_rules_pass": round(100.0 * float(np.mean(raw_passed)), 1) if raw_passed else None,
        "critic": {k: round(float(np.mean(v)), 3) if v else None for k, v in scores.items()},
        "latency_p50_s": round(float(np.percentile(latency, 50)), 3) if latency else None,
    }


def evaluate_edits(
    folder: str | Path, cfg: EvalConfig, runtime: LLMConfig | None = None, split: str = "val"
) -> dict[str, Any]:
    """``gravity eval --edits``: score the model ``cfg`` names (or ``"planner"``) on the held-out
    edits in ``folder`` (:func:`held_out_edits`; ``cfg.limit`` rows, 0 = all); the JSON report of
    :func:`score_edits` with the model, the split and the reading's stats.
    """
    rows, stats = held_out_edits(folder, split)
    if cfg.limit:
        rows = rows[: cfg.limit]
    t0 = time.perf_counter()
    generate, label, fields = named_proposer(cfg, runtime)
    report = score_edits(rows, generate, label)
    report.update(fields, temperature=cfg.temperature)
    report.update(edits_dir=str(folder), split=split, read=stats, wall_s=round(time.perf_counter() - t0, 1))
    log.info("%s: %s", report["label"], report["to_edit"])
    return report


def markdown_edits(reports: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`evaluate_edits` reports (angles in degrees, rates in %)."""

    def ms(d: Mapping[str, Any]) -> str:
        return "-" if d["mean"] is None else f"{d['mean']:g} / {d['median']:g} (n={d['n']})"

    lines = [
        "| model | edits | angle to the producer, moved stems: mean / median ° | all stems ° "
        "| proposed (before): moved ° | before: all ° | rules pass % (raw) | critic (proposed, edited) |",
        "|" + "---|" * 8,
    ]
    for r in reports:
        c = r["critic"]
        lines.append(
            f"| {r['label']} | {r['edits']} | {ms(r['to_edit']['moved'])} | {ms(r['to_edit']['all'])} "
            f"| {ms(r['before']['moved'])} | {ms(r['before']['all'])} | {r['rules_pass']} ({r['raw_rules_pass']}) "
            f"| {c['model']} ({c['proposed']}, {c['edited']}) |"
        )
    return "\n".join(lines) + "\n"
