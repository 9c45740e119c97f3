"""``gravity export``: stems and the scene that places them as one ADM BW64 file (ITU-R BS.2076/BS.2088).

What a studio opens: Nuendo, Pro Tools, the EBU ADM Renderer and the Dolby tools read the
stems as tracks and the scene as object metadata (positions, motion, width, gain). Nothing is
rendered; ``gravity render --format adm`` writes the same file (and plans a scene when none is
given).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gravity.cli.common import int_in, parse_pairs

__all__ = ["add_arguments", "run"]

#: The RenderConfig fields an export uses (how distance and width become ADM values).
_ADM_FIELDS = ("reference_distance_m", "near_clamp_m", "max_spread_deg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity export``'s arguments (stems, scene, output, PCM and ADM settings) on ``p``."""
    from renderer.config import RenderConfig  # the CLI is the one place rooms meet

    from gravity.settings import add_arguments as add_settings, settings

    p.add_argument("stems", nargs="+", help="stem files, or a folder of stems")
    p.add_argument("--scene", required=True, help="scene JSON whose objects place the stems")
    p.add_argument("-o", "--output", required=True, help="output ADM BW64 file (.wav); written whole or not at all")
    p.add_argument("--force", action="store_true", help="allow the output to be one of the inputs: overwrite it")
    p.add_argument("--rate", type=int_in(8000, 384000), default=48000, help="sample rate in Hz (default: 48000)")
    p.add_argument("--bits", type=int, choices=(16, 24, 32), default=24, help="bits per PCM sample (default: 24)")
    p.add_argument("--map", action="append", metavar="STEM=FILE", help="match a scene stem id to a file explicitly")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    skip = [name for name in settings(RenderConfig) if name not in _ADM_FIELDS]
    add_settings(p, RenderConfig, title="ADM values (distance gain and normalisation, width)", skip=skip)


def run(args: argparse.Namespace) -> int:
    """Export the stems and the scene as an ADM BW64 file; returns 0 (errors raise, one line each)."""
    from renderer.config import RenderConfig
    from renderer.export import check_adm_output, export_files
    from renderer.offline import check_not_an_input

    from gravity.analysis.reading import find_stems
    from gravity.settings import from_args

    config = from_args(RenderConfig, args)
    out = Path(args.output)
    check_adm_output(out)  # a .flac, a missing folder: before any stem is read
    skipped: list[str] = []  # Gravity's own renders and exports in a stems folder
    stems: list[Path] = []
    for item in map(Path, args.stems):
        stems += find_stems(item, skipped) if item.is_dir() else [item]
    for line in skipped:
        print(f"note: {line}", file=sys.stderr)
    if not args.force:
        inputs = [*stems, Path(args.scene)]
        check_not_an_input([out], inputs, hint="name another output, or pass --force to overwrite it")
    report = export_files(
        stems,
        Path(args.scene),
        out,
        rate=args.rate,
        bits=args.bits,
        stem_map=parse_pairs(args.map) if args.map else None,
        config=config,
        overwrite_inputs=args.force,
        progress=not args.quiet,
    )
    print(report.summary(), file=sys.stderr)
    return 0
