"""``gravity plot``: draw a scene (top and side views with motion paths)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gravity.cli.common import refuse_clobber
from gravity.errors import UsageError, quote

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity plot``'s arguments on ``p``."""
    p.add_argument("scene")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .svg, .pdf; no extension: PNG)")
    p.add_argument("--title")


def run(args: argparse.Namespace) -> int:
    """Draw the scene to ``--output``; returns 0. A wrong output is refused before the scene is read."""
    from gravity.plot import SAVE_FORMATS, plot_scene
    from gravity.scene import Scene

    ext = Path(args.output).suffix.lower()
    if ext and ext not in SAVE_FORMATS:
        raise UsageError(f"-o {quote(args.output, 80)}: cannot save a plot as {ext}; use {', '.join(SAVE_FORMATS)}")
    refuse_clobber(args.output, [args.scene])
    scene = Scene.load(args.scene)
    plot_scene(scene.raw, args.output, title=args.title or Path(args.scene).name)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
