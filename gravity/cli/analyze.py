"""``gravity analyze``: stems in, a request (descriptors) out."""

from __future__ import annotations

import argparse
import json
import sys

from gravity.cli.common import parse_pairs

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity analyze``'s arguments (stems, tempo, format, budget, hints) on ``p``."""
    p.add_argument("stems", nargs="+", help="stem audio files or folders of them")
    p.add_argument("-o", "--output", help="write the request JSON here (atomically) instead of stdout")
    p.add_argument("--bpm", type=float, help="tempo in beats per minute (default: estimated from the stems)")
    p.add_argument("--format", default="binaural", help="target format (binaural, 7.1.4, iamf ...)")
    p.add_argument("--max-objects", type=int, help="object budget (default: one per stem)")
    p.add_argument("--style", default="pop")
    p.add_argument("--section", default="verse")
    p.add_argument(
        "--hint", action="append", metavar="STEM=TEXT", help='placement hint, e.g. vox="slightly above, front"'
    )


def run(args: argparse.Namespace) -> int:
    """Analyse the stems into a request (to ``--output`` or stdout); returns the exit code."""
    from gravity.analysis import analyze_stems
    from gravity.scene import write_json_atomic

    result = analyze_stems(
        args.stems,
        bpm=args.bpm,
        target_format=args.format,
        max_objects=args.max_objects,
        style=args.style,
        section=args.section,
        hints=parse_pairs(args.hint),
    )
    print(result.summary(), file=sys.stderr)
    if args.output:
        write_json_atomic(result.request, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(json.dumps(result.request, indent=2) + "\n")
    return 0
