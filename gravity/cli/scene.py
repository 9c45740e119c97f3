"""``gravity scene``: a request in, a rule-checked scene out."""

from __future__ import annotations

import argparse
import logging
import sys

from gravity.cli.common import SEED, add_llm_args, llm_config, load_llm, refuse_clobber
from gravity.errors import RuleConflictError

log = logging.getLogger("gravity")

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity scene``'s arguments (request, output, seed, prompt, planner, LLM settings) on ``p``."""
    p.add_argument("request", help="request JSON file")
    p.add_argument("-o", "--output", help="write the scene here (atomically) instead of stdout")
    p.add_argument("--seed", type=SEED, default=0, help="proposer seed, 0..2**32-1 (default 0)")
    p.add_argument("--prompt", help="scene-level text direction (replaces the request's prompt)")
    p.add_argument(
        "--planner",
        default="auto",
        choices=["auto", "planner", "llm"],
        help="scene proposer: auto = fine-tuned LLM if available, else the planner",
    )
    add_llm_args(p)


def run(args: argparse.Namespace) -> int:
    """Plan and rule-check a scene for the request (to ``--output`` or stdout); returns the exit code."""
    from gravity.pipeline import make_scene
    from gravity.request import Request
    from gravity.scene import dumps, write_json_atomic
    from gravity.schema import read_json

    llm_config(args)  # a bad LLM flag (--timeout -5) fails now, even when no model is loaded
    refuse_clobber(args.output, [args.request])
    doc = read_json(args.request)
    if args.prompt is not None and isinstance(doc, dict):
        doc = {**doc, "prompt": args.prompt}
    request = Request.from_dict(doc, source=str(args.request))
    llm = load_llm(args, args.planner)
    try:
        result = make_scene(request, planner=args.planner, seed=args.seed, llm=llm)  # type: ignore[arg-type]
    except RuleConflictError as exc:
        raise RuleConflictError(exc.issues, source=str(args.request)) from None
    log.info(
        "scene by %s in %.1f ms; proposal broke %d rule(s)",
        result.planner,
        result.seconds * 1e3,
        len(result.violations),
    )
    if log.isEnabledFor(logging.INFO):  # the card costs a few ms: only when it is shown (-v)
        from gravity.critic import critique

        log.info("%s", critique(request, result.scene).summary())
    for c in result.meta.get("candidates", ()):  # the critic's choice (--candidates >= 2)
        log.info(
            "candidate %s: adherence %.2f, score %.3f%s",
            c["proposer"],
            c["adherence"],
            c["score"],
            " (chosen)" if c["chosen"] else "",
        )
    if result.meta.get("fallback"):
        print(f"LLM proposal unusable ({result.meta['fallback']}); used the planner", file=sys.stderr)
    if args.output:
        write_json_atomic(result.scene, args.output)
        print(
            f"wrote {args.output} ({len(result.scene['objects'])} objects, {result.seconds * 1e3:.0f} ms)",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(dumps(result.scene))
    return 0
