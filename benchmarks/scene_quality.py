"""Scene quality on the engineer's session set (issue 16): the critic's card and the written expectations.

Runs every session of ``examples/sessions/`` through a proposer (the deterministic planner + the
rule engine by default), computes the critic card per scene (:func:`gravity.critic.critique`),
judges the engineer's checks (:func:`gravity.expectations.check_expectations`) and the
section-contrast pairs (:func:`gravity.expectations.check_pair`), and prints one line per
session and the acceptance table of issue 16.

    .venv/bin/python benchmarks/scene_quality.py                      # the planner of this tree
    .venv/bin/python benchmarks/scene_quality.py --json /tmp/q.json   # also write everything
    .venv/bin/python benchmarks/scene_quality.py --planner-from /tmp/before   # another tree's planner

``--planner-from DIR`` plans and enforces in a subprocess with ``PYTHONPATH=DIR`` (e.g. an
older commit unpacked with ``git archive REV | tar -x -C DIR``), so *before* numbers are
measured with today's critic and checks on yesterday's scenes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from gravity.critic import BIG_SECTIONS, Card, contrast, critique
from gravity.expectations import Pair, Result, Session, check_expectations, check_pair, load_sessions
from gravity.pipeline import make_scene
from gravity.request import Request
from gravity.scene import dumps

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "examples" / "sessions"
SPEED_CAP_DEG_S = 60.0

# Plans and enforces a JSON list of requests read from stdin with whatever `gravity` is on the path.
_CHILD = """
import json, sys
from gravity.pipeline import make_scene
from gravity.request import Request
docs = json.load(sys.stdin)
json.dump([make_scene(Request.from_dict(d), planner="planner").scene for d in docs], sys.stdout)
"""


@dataclass(frozen=True)
class Judged:
    """One session's scene, card and expectation results."""

    session: Session
    scene: dict[str, Any]
    card: Card
    results: list[Result]


def propose(
    requests: Sequence[Request],
    planner_from: str | None = None,
    llm_candidates: int | None = None,
    llm_settings: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rule-checked scenes for ``requests``: the planner in-process or from another source tree,
    or (``llm_candidates`` N) the default model with ``--candidates N`` (:mod:`gravity.pipeline`).
    """
    if llm_candidates is not None:
        from gravity.llm.config import LLMConfig
        from gravity.llm.runtime import SceneLLM

        llm = SceneLLM(LLMConfig(candidates=llm_candidates, **(llm_settings or {})))
        results = [make_scene(r, planner="llm", llm=llm) for r in requests]
        chosen = [res.planner for res in results]
        print(f"model {llm.name}, --candidates {llm_candidates}: chosen {chosen.count('llm')} model / "
              f"{chosen.count('planner')} planner scenes")  # fmt: skip
        return [res.scene for res in results]
    if planner_from is None:
        return [make_scene(r, planner="planner").scene for r in requests]
    env = {**os.environ, "PYTHONPATH": str(Path(planner_from).resolve())}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps([dict(r.raw) for r in requests]),
        capture_output=True,
        text=True,
        env=env,
        cwd=planner_from,
        check=True,
    )
    scenes: list[dict[str, Any]] = json.loads(out.stdout)
    return scenes


def judge(sessions: dict[str, Session], pairs: list[Pair], scenes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cards, expectation results, pair results and the acceptance summary (a JSON-ready dict)."""
    judged = {
        name: Judged(s, sc, critique(s.request, sc), check_expectations(s.request, sc, s.expect, s.source))
        for (name, s), sc in zip(sessions.items(), scenes, strict=True)
    }
    pair_rows = []
    for p in pairs:
        ja, jb = judged[p.a], judged[p.b]
        res = check_pair(ja.session.request, ja.scene, jb.session.request, jb.scene, p.expect, f"pairs.json {p.a}")
        pair_rows.append({"a": p.a, "b": p.b, "contrast": contrast(ja.card, jb.card), "results": res})
    return {"judged": judged, "pairs": pair_rows, "summary": summarise(judged, pair_rows)}


def _speed_issue(card: Card) -> bool:
    """Whether the critic saw an object faster than 60 deg/s (or the speed its text asked)."""
    return any("deg/s" in m for m in card.motion_issues)


def summarise(judged: dict[str, Judged], pair_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The acceptance numbers of issue 16 over the session set."""
    cards = {n: j.card for n, j in judged.items()}
    big = [c for n, c in cards.items() if judged[n].session.request.section in BIG_SECTIONS]
    results = [r for j in judged.values() for r in j.results] + [r for p in pair_rows for r in p["results"]]
    met = sum(r.passed for r in results)
    n_cards = max(len(cards), 1)
    return {
        "sessions": len(cards),
        "stacked_pairs_total": sum(c.stacked_pairs for c in cards.values()),
        "crowded_pairs_total": sum(c.crowded_pairs for c in cards.values()),
        "anchored_pct": 100.0 * sum(c.anchors_ok for c in cards.values()) / n_cards,
        "zero_az_share_mean": sum(c.zero_az_share for c in cards.values()) / n_cards,
        "zero_az_share_max": max((c.zero_az_share for c in cards.values()), default=0.0),
        "big_sessions": len(big),
        "front30_big_mean": sum(c.front30_share for c in big) / max(len(big), 1),
        "front30_big_max": max((c.front30_share for c in big), default=0.0),
        "coverage_motion_big_mean": sum(c.coverage_motion for c in big) / max(len(big), 1),
        "coverage_motion_big_min": min((c.coverage_motion for c in big), default=0.0),
        "pairs_bigger": sum(p["contrast"].bigger for p in pair_rows),
        "pairs": len(pair_rows),
        "max_speed_deg_s": max((c.max_speed_deg_s for c in cards.values()), default=0.0),
        "over_speed_unasked": sorted(n for n, c in cards.items() if _speed_issue(c)),
        "score_mean": sum(c.score for c in cards.values()) / n_cards,
        "expectations_met": met,
        "expectations": len(results),
        "expectations_pct": 100.0 * met / max(len(results), 1),
    }


def report(out: dict[str, Any]) -> str:
    """Per-session lines, per-pair lines, and the acceptance table."""
    lines = []
    for name, j in out["judged"].items():
        c, res = j.card, j.results
        ok = sum(r.passed for r in res)
        lines.append(
            f"{name:28s} {j.session.request.section:11s} score {c.score:.2f} objs {c.n_objects:2d} "
            f"stacked {c.stacked_pairs} front30 {c.front30_share:.2f} zero0 {c.zero_az_share:.2f} "
            f"cover {c.coverage_static:.2f}/{c.coverage_motion:.2f} rear {c.rear_share:.2f} "
            f"height {c.height_share:.2f} anchors {'ok' if c.anchors_ok else 'NO'} "
            f"max {c.max_speed_deg_s:.0f} deg/s | expect {ok}/{len(res)}"
        )
        lines += [f"    {r.line()}" for r in res if not r.passed]
    lines.append("")
    for p in out["pairs"]:
        res = p["results"]
        lines.append(
            f"{p['a']} -> {p['b']}: {p['contrast'].summary()} | expect {sum(r.passed for r in res)}/{len(res)}"
        )
        lines += [f"    {r.line()}" for r in res if not r.passed]
    s = out["summary"]
    rows = [
        ("stacked same-band pairs (total)", f"{s['stacked_pairs_total']}", "0"),
        ("lead + low end anchored", f"{s['anchored_pct']:.0f} % of sessions", "100 %"),
        (
            "non-low objects at exactly 0 deg (mean)",
            f"{s['zero_az_share_mean']:.3f} (max {s['zero_az_share_max']:.2f})",
            "<= 0.10",
        ),
        (
            f"front30 share, {s['big_sessions']} chorus/hook/drop (mean)",
            f"{s['front30_big_mean']:.3f} (max {s['front30_big_max']:.2f})",
            "<= 0.55",
        ),
        (
            "coverage (motion), chorus/hook/drop (mean)",
            f"{s['coverage_motion_big_mean']:.3f} (min {s['coverage_motion_big_min']:.2f})",
            ">= 0.55",
        ),
        ("contrast pairs bigger", f"{s['pairs_bigger']}/{s['pairs']}", "all"),
        (
            "max speed (deg/s)",
            f"{s['max_speed_deg_s']:.0f}; over cap unasked: {len(s['over_speed_unasked'])}",
            "<= 60 unless asked",
        ),
        ("expectations met", f"{s['expectations_met']}/{s['expectations']} = {s['expectations_pct']:.1f} %", ">= 90 %"),
        ("critic score (mean)", f"{s['score_mean']:.3f}", ""),
    ]
    w = max(len(r[0]) for r in rows)
    lines += ["", f"{'acceptance (issue 16)':{w}s} | measured | target", "-" * (w + 40)]
    lines += [f"{a:{w}s} | {b} | {c}" for a, b, c in rows]
    if s["over_speed_unasked"]:
        lines.append(f"over 60 deg/s unasked: {', '.join(s['over_speed_unasked'])}")
    return "\n".join(lines)


def to_json(out: dict[str, Any]) -> dict[str, Any]:
    """Everything in ``out`` as plain JSON (cards as dicts, results as check/passed/detail)."""

    def res(rs: list[Result]) -> list[dict[str, Any]]:
        return [{"check": dict(r.check), "passed": r.passed, "detail": r.detail} for r in rs]

    return {
        "sessions": {
            n: {
                "section": j.session.request.section,
                "genre": j.session.genre,
                "card": j.card.to_dict(),
                "expect": res(j.results),
                "scene": j.scene,
            }
            for n, j in out["judged"].items()
        },
        "pairs": [
            {"a": p["a"], "b": p["b"], "contrast": p["contrast"].to_dict(), "expect": res(p["results"])}
            for p in out["pairs"]
        ],
        "summary": out["summary"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default=str(SESSIONS), help="folder of session JSON files (default: %(default)s)")
    ap.add_argument("--planner-from", metavar="DIR", help="plan with the gravity package of another source tree")
    ap.add_argument("--json", metavar="OUT", help="write cards, results and the summary to this JSON file")
    ap.add_argument(
        "--llm", metavar="N", type=int, help="propose with the default model and --candidates N (1 = the model alone)"
    )
    ap.add_argument("--lora", metavar="GGUF", help="with --llm: this LoRA instead of the shipped adapter")
    ap.add_argument("--temperature", type=float, help="with --llm: sampling temperature (default: the runtime's)")
    ap.add_argument(
        "--refine", action="store_true", help="pass every scene through gravity.refine (the default proposer's search)"
    )
    args = ap.parse_args(argv)
    sessions, pairs = load_sessions(args.sessions)
    t0 = time.perf_counter()
    settings: dict[str, Any] = {}
    if args.lora:
        settings["lora_path"] = args.lora
    if args.temperature is not None:
        settings["temperature"] = args.temperature
    scenes = propose([s.request for s in sessions.values()], args.planner_from, args.llm, settings)
    if args.refine:  # the critic-guided search alone, on whatever proposed (the default runs it with --llm >= 2)
        from gravity.plan.planner import text_placed
        from gravity.refine import refine

        scenes = [
            refine(s.request, sc, text_placed(s.request)).scene for s, sc in zip(sessions.values(), scenes, strict=True)
        ]
    t1 = time.perf_counter()
    out = judge(sessions, pairs, scenes)
    t2 = time.perf_counter()
    print(report(out))
    print(
        f"\n{len(scenes)} scenes planned in {t1 - t0:.2f} s, judged in {t2 - t1:.2f} s "
        f"({'planner from ' + args.planner_from if args.planner_from else 'this tree'}"
        f"{f', model --candidates {args.llm}' if args.llm else ''}{', refined' if args.refine else ''})"
    )
    if args.json:
        Path(args.json).write_text(dumps(to_json(out)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
