"""``gravity render``: stems placed by a scene, rendered to audio; plans a scene when none is given."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from gravity.cli.common import add_llm_args, load_llm, parse_pairs
from gravity.cli.settings import add_render_args, render_config

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity render``'s arguments (stems, scene, output, render settings) on ``p``."""
    p.add_argument("stems", nargs="+", help="stem files, or a folder of stems")
    p.add_argument("-o", "--output", required=True, help="output audio file (.wav), written atomically")
    p.add_argument(
        "--scene",
        help="scene JSON; without it the stems are analysed and a scene is planned "
        "(written beside the output as .scene.json and .png)",
    )
    p.add_argument("--hrtf", help="SOFA HRIR file (default: embedded MIT KEMAR)")
    p.add_argument("--rate", type=int, default=48000, help="render sample rate in Hz")
    p.add_argument(
        "--block",
        type=int,
        default=8192,
        help="block size in samples (output is the same for any size; bigger is faster offline)",
    )
    p.add_argument("--normalize", action="store_true", help="scale to the scene's loudness target (BS.1770)")
    p.add_argument("--map", action="append", metavar="STEM=FILE", help="match a scene stem id to a file explicitly")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--bpm", type=float, help="tempo when planning (default: estimated)")
    p.add_argument("--style", default="pop")
    p.add_argument("--section", default="verse")
    p.add_argument("--prompt", help="scene-level text direction when planning")
    p.add_argument(
        "--hint", action="append", metavar="STEM=TEXT", help='per-stem hint, e.g. vox="slightly above, front"'
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--planner", default="auto", choices=["auto", "planner", "llm"])
    add_llm_args(p)
    add_render_args(p)  # --format, --hop, --reverb/--no-reverb ...: one flag per RenderConfig field


def run(args: argparse.Namespace) -> int:
    """Render stems to audio; without --scene, analyse the stems and plan a scene first."""
    from renderer.offline import render_files  # the CLI is the one place rooms meet

    from gravity.analysis.reading import find_stems  # the analysis (pyloudnorm, scipy.signal) only to plan

    # The imports above built ~70k objects (numba, scipy) that live as long as the process: frozen,
    # no garbage collection walks them again, nor the interpreter's exit (~0.3 s after a render).
    gc.freeze()
    config = render_config(args)  # a bad knob fails here, before anything is analysed or written
    out = Path(args.output)
    stems: list[Path] = []
    for item in map(Path, args.stems):
        stems += find_stems(item) if item.is_dir() else [item]
    scene_path = Path(args.scene) if args.scene else None
    if scene_path is None:
        from gravity.analysis import analyze_stems
        from gravity.pipeline import make_scene
        from gravity.request import Request
        from gravity.scene import write_json_atomic

        fmt = "binaural" if args.format in ("binaural", "stereo", "foa", "hoa") else args.format
        # the arguments as given, so folders expand (and bad files are named) exactly as in gravity analyze
        analysis = analyze_stems(
            args.stems,
            bpm=args.bpm,
            target_format=fmt,
            style=args.style,
            section=args.section,
            hints=parse_pairs(args.hint),
        )
        print(analysis.summary(), file=sys.stderr)
        doc = dict(analysis.request)
        if args.prompt:
            doc["prompt"] = args.prompt
        request = Request.from_dict(doc, source="analysed stems")
        result = make_scene(request, planner=args.planner, seed=args.seed, llm=load_llm(args, args.planner))  # type: ignore[arg-type]
        from gravity.critic import critique

        # the planned scene's scorecard next to what you hear (gravity critique has the whole card)
        print(f"scene by {result.planner}: {critique(request, result.scene).summary()}", file=sys.stderr)
        scene_path = out.with_suffix(".scene.json")
        write_json_atomic(result.scene, scene_path)
        from gravity.plot import plot_scene

        plot_scene(result.scene, out.with_suffix(".png"), title=f"{out.name} ({result.planner})")
        stems = [Path(s.path) for s in analysis.analysed]
        stem_map: dict[str, str] | None = {s.id: s.path for s in analysis.analysed}
    else:
        stem_map = parse_pairs(args.map) if args.map else None
    try:
        report = render_files(
            stems,
            scene_path,
            out,
            fmt=config.fmt,
            hrtf_path=Path(args.hrtf) if args.hrtf else None,
            rate=args.rate,
            block=args.block,
            stem_map=stem_map,
            progress=not args.quiet,
            normalize=args.normalize,
            config=config,
        )
    except BaseException:
        if not args.scene:  # no partial output: the planned scene and its plot go with the failed render
            for p in (scene_path, out.with_suffix(".png")):
                p.unlink(missing_ok=True)
        raise
    print(report.summary(), file=sys.stderr)
    made = [out] + ([scene_path, out.with_suffix(".png")] if not args.scene else [])
    print("wrote " + ", ".join(str(p) for p in made), file=sys.stderr)
    return 0
