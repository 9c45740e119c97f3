"""``gravity render``: stems placed by a scene, rendered to audio; plans a scene when none is given."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gravity.cli.common import add_llm_args, load_llm, parse_pairs

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stems", nargs="+", help="stem files, or a folder of stems")
    p.add_argument("-o", "--output", required=True, help="output audio file (.wav), written atomically")
    p.add_argument("--scene", help="scene JSON; without it the stems are analysed and a scene is planned "
                                   "(written beside the output as .scene.json and .png)")
    p.add_argument("--format", default="binaural", choices=["binaural", "stereo", "foa", "hoa"])
    p.add_argument("--hrtf", help="SOFA HRIR file (default: embedded MIT KEMAR)")
    p.add_argument("--rate", type=int, default=48000, help="render sample rate in Hz")
    p.add_argument("--block", type=int, default=8192, help="block size in samples (output is the same for any size; bigger is faster offline)")
    p.add_argument("--normalize", action="store_true", help="scale to the scene's loudness target (BS.1770)")
    p.add_argument("--map", action="append", metavar="STEM=FILE", help="match a scene stem id to a file explicitly")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--bpm", type=float, help="tempo when planning (default: estimated)")
    p.add_argument("--style", default="pop")
    p.add_argument("--section", default="verse")
    p.add_argument("--prompt", help="scene-level text direction when planning")
    p.add_argument("--hint", action="append", metavar="STEM=TEXT", help='per-stem hint, e.g. vox="slightly above, front"')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--planner", default="auto", choices=["auto", "planner", "llm"])
    add_llm_args(p)


def run(args: argparse.Namespace) -> int:
    """Render stems to audio; without --scene, analyse the stems and plan a scene first."""
    from renderer.offline import render_files  # the CLI is the one place rooms meet

    from gravity.analysis import analyze_stems, find_stems
    from gravity.pipeline import make_scene
    from gravity.request import Request
    from gravity.scene import write_json_atomic

    out = Path(args.output)
    stems: list[Path] = []
    for item in map(Path, args.stems):
        stems += find_stems(item) if item.is_dir() else [item]
    scene_path = Path(args.scene) if args.scene else None
    if scene_path is None:
        fmt = "binaural" if args.format in ("binaural", "stereo", "foa", "hoa") else args.format
        analysis = analyze_stems(stems, bpm=args.bpm, target_format=fmt, style=args.style, section=args.section,
                                 hints=parse_pairs(args.hint))
        print(analysis.summary(), file=sys.stderr)
        doc = dict(analysis.request)
        if args.prompt:
            doc["prompt"] = args.prompt
        request = Request.from_dict(doc, source="analysed stems")
        result = make_scene(request, planner=args.planner, seed=args.seed, llm=load_llm(args, args.planner))  # type: ignore[arg-type]
        scene_path = out.with_suffix(".scene.json")
        write_json_atomic(result.scene, scene_path)
        from gravity.plot import plot_scene

        plot_scene(result.scene, out.with_suffix(".png"), title=f"{out.name} ({result.planner})")
        stems = [Path(s.path) for s in analysis.analysed]
        stem_map: dict[str, str] | None = {s.id: s.path for s in analysis.analysed}
    else:
        stem_map = parse_pairs(args.map) if args.map else None
    report = render_files(stems, scene_path, out, fmt=args.format, hrtf_path=Path(args.hrtf) if args.hrtf else None,
                          rate=args.rate, block=args.block, stem_map=stem_map, progress=not args.quiet,
                          normalize=args.normalize)
    print(report.summary(), file=sys.stderr)
    made = [out] + ([scene_path, out.with_suffix(".png")] if not args.scene else [])
    print("wrote " + ", ".join(str(p) for p in made), file=sys.stderr)
    return 0
