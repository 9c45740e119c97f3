"""``gravity plot``: draw a scene (top and side views with motion paths)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity plot``'s arguments on ``p``."""
    p.add_argument("scene")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .svg, .pdf)")
    p.add_argument("--title")


def run(args: argparse.Namespace) -> int:
    """Draw the scene to ``--output``; returns 0."""
    from gravity.plot import plot_scene
    from gravity.scene import Scene

    scene = Scene.load(args.scene)
    plot_scene(scene.raw, args.output, title=args.title or Path(args.scene).name)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
