"""Does the training teacher do what the text asks? The critic's adherence on training rows (issue 17).

Draws training requests as ``gravity data`` does (same seed, same rows) and judges, with the
scene critic's adherence, the teacher's scene (planner reading the text + labels + rule
engine) and the planner alone. Every missed hint is put in one class:

- ``folded``: the budget grouped the stem into another stem's object;
- ``rules``: the planner's proposal met it, the rule engine moved it (separation, limits);
- ``planner``: the proposal itself missed it (often text that asks two things at once,
  e.g. "keep the vocal out of the back" and "circling around me").

Run: ``python benchmarks/teacher_adherence.py [--rows 300] [--max-stems 10]``. Prints the
share of rows with a miss for each proposer and the classes with two examples each.
"""

from __future__ import annotations

import argparse
import collections
import re
import time

import numpy as np

from gravity.critic import critique
from gravity.plan.planner import plan, text_placed
from gravity.request import Request
from gravity.rules import enforce
from training.data import SPLITS, DataConfig, make_example, teacher_scene


def _classify(request: Request, scene: dict, proposal: dict, issues: tuple[str, ...]) -> list[tuple[str, str]]:
    raw = set(critique(request, proposal).adherence_issues)
    hosts = {m: o["id"] for o in scene["objects"] for m in (o.get("stems") or [o["id"]])}
    out = []
    for issue in issues:
        sid = issue.split(":", 1)[0]
        cls = "folded" if hosts.get(sid) != sid else ("planner" if issue in raw else "rules")
        out.append((cls, re.sub(r"[-+]?\d+(\.\d+)?", "N", issue.split(": ", 1)[1])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=300, help="training rows to draw (default 300)")
    ap.add_argument("--max-stems", type=int, default=None, help="as gravity data's max_stems (default: its own)")
    args = ap.parse_args()
    cfg = DataConfig() if args.max_stems is None else DataConfig(max_stems=args.max_stems)
    code, pool = SPLITS["train"]
    missed = {"teacher": 0, "planner alone": 0}
    classes: collections.Counter[tuple[str, str]] = collections.Counter()
    examples: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    t0 = time.perf_counter()
    for i in range(args.rows):
        ex = make_example(np.random.default_rng([cfg.seed, code, i]), pool, cfg)
        request = Request.from_dict(ex.request)
        teacher = teacher_scene(request, ex.labels)
        proposal = plan(request)
        alone = enforce(request, proposal, text_placed(request)).scene
        t_card, p_card = critique(request, teacher), critique(request, alone)
        missed["teacher"] += bool(t_card.adherence_issues)
        missed["planner alone"] += bool(p_card.adherence_issues)
        for key in _classify(request, alone, proposal, p_card.adherence_issues):
            classes[key] += 1
            if len(examples[key]) < 2:
                examples[key].append(f"train-{i:06d}")
    dt = time.perf_counter() - t0
    print(f"{args.rows} training rows (seed {cfg.seed}, {cfg.min_stems}-{cfg.max_stems} stems) in {dt:.1f} s")
    for who, n in missed.items():
        print(f"  {who:14s} rows missing a hint: {n:4d} ({100.0 * n / args.rows:.1f} %)")
    print("planner alone, missed hints by class:")
    for (cls, what), n in sorted(classes.items(), key=lambda kv: (kv[0][0], -kv[1])):
        print(f"  {n:4d}  {cls:8s} {what:40s} e.g. {', '.join(examples[(cls, what)])}")


if __name__ == "__main__":
    main()
