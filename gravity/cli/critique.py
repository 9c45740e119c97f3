"""``gravity critique``: score a scene against published immersive-music practice."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from gravity.cli.common import fail
from gravity.errors import Issue, ValidationError

if TYPE_CHECKING:
    from gravity.critic import Card
    from gravity.request import Request
    from gravity.scene import Scene

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity critique``'s arguments (scene, request, JSON, a second section) on ``p``."""
    p.add_argument("scene", help="scene JSON file")
    p.add_argument("--request", required=True, metavar="REQ.json", help="the request the scene answers")
    p.add_argument("--json", action="store_true", help="print the card as JSON instead of a table")
    p.add_argument(
        "--against",
        metavar="SCENE2.json",
        help="the bigger section (chorus, drop) of the same stems: also print the contrast",
    )
    p.add_argument("--request2", metavar="REQ2.json", help="SCENE2's request (default: --request)")


def _load(scene_path: str, request_path: str) -> tuple[Request, Scene]:
    """The request and the scene, validated, every object's stems in the request."""
    from gravity.request import Request
    from gravity.scene import Scene
    from gravity.schema import read_json

    request = Request.from_dict(read_json(request_path), request_path)
    scene = Scene.from_dict(read_json(scene_path), scene_path)
    ids = {s.id for s in request.stems}
    for n, o in enumerate(scene.objects):
        missing = [m for m in o.stems if m not in ids]
        if missing:
            raise ValidationError(
                [Issue(f"objects[{n}].stems", f"stem {missing[0]!r} is not in the request {request_path}")], scene_path
            )
    return request, scene


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "ok" if v else "NO"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _table(card: Card, title: str) -> str:
    """One metric per line with the practice it follows, then the issues."""
    from gravity.critic import PRACTICE

    lines = [title]
    width = max(len(label) for label, _ in PRACTICE.values())
    for name, (label, practice) in PRACTICE.items():
        lines.append(f"  {label:<{width}}  {_value(getattr(card, name)):>6}  {practice}".rstrip())
    for name in ("pair_issues", "anchor_issues", "height_issues", "motion_issues", "adherence_issues"):
        lines += [f"  ! {text}" for text in getattr(card, name)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the card (and the contrast with ``--against``); bad input: one line, exit 2."""
    from gravity.critic import contrast, critique

    if args.request2 and not args.against:
        return fail("--request2 needs --against SCENE2.json", 2)
    try:
        request, scene = _load(args.scene, args.request)
        card = critique(request, scene)
        other = None
        if args.against:
            request2, scene2 = _load(args.against, args.request2 or args.request)
            other = critique(request2, scene2)
    except ValidationError as exc:
        first = exc.issues[0].format(exc.source) if exc.issues else str(exc)
        more = f" (and {len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
        return fail(first + more, 2)
    if args.json:
        doc: dict[str, Any] = {"card": card.to_dict()}
        if other is not None:
            doc["against"] = other.to_dict()
            doc["contrast"] = contrast(card, other).to_dict()
        print(json.dumps(doc, indent=2))
        return 0
    print(_table(card, f"{args.scene}: {card.summary()}"))
    if other is not None:
        print(_table(other, f"{args.against}: {other.summary()}"))
        print(contrast(card, other).summary())
    return 0
