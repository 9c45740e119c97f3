"""``gravity render``: stems placed by a scene, rendered to audio; plans a scene when none is given."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gravity.cli.common import add_llm_args, load_llm, parse_pairs
from gravity.cli.settings import add_render_args, llm_config, render_config

if TYPE_CHECKING:
    from gravity.scene import Scene

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity render``'s arguments (stems, scene, output, render settings) on ``p``."""
    p.add_argument("stems", nargs="+", help="stem files, or a folder of stems")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output audio file (.wav, .flac, .aiff); it and the planned scene and plot appear together or not at all",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="allow the output to be one of the inputs (a stem, the scene): overwrite it",
    )
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
    p.set_defaults(format=None)  # no --format: the scene's own target format (_default_format)


def run(args: argparse.Namespace) -> int:
    """Render stems to audio; without --scene, analyse the stems and plan a scene first.

    Everything that can be checked is checked before any work (the output can be written, it is
    none of the inputs); the outputs (audio, and when planning the scene JSON and its plot)
    are written to hidden temp files and renamed together at the end, so a failure anywhere
    leaves none of them and an existing file of the same name as it was.
    """
    from renderer.offline import check_not_an_input, check_output, render_files  # the CLI is where rooms meet

    from gravity.analysis.reading import find_stems  # the analysis (pyloudnorm, scipy.signal) only to plan
    from gravity.atomic import atomic_paths

    # The imports above built ~70k objects (numba, scipy) that live as long as the process: frozen,
    # no garbage collection walks them again, nor the interpreter's exit (~0.3 s after a render).
    gc.freeze()
    loaded = _read_scene(args.scene)  # once: the default format and the render both use it
    args.format = args.format or _default_format(loaded)
    config = render_config(args)  # a bad knob fails here, before anything is analysed or written
    llm_config(args)  # so does a bad LLM flag (--timeout -5), even with --scene (no model loads)
    out = Path(args.output)
    adm = config.fmt == "adm"  # an ADM BW64 export: the stems as tracks, the scene as metadata
    if adm:
        from renderer.export import check_adm_output, export_files

        check_adm_output(out)
    else:
        check_output(out)  # .mp3, a folder, a missing folder: before hours of analysis
    planned = not args.scene
    outputs = [out] + ([out.with_suffix(".scene.json"), out.with_suffix(".png")] if planned else [])
    skipped: list[str] = []  # Gravity's own renders in a stems folder (the analysis says them when planning)
    stems: list[Path] = []
    for item in map(Path, args.stems):
        stems += find_stems(item, skipped) if item.is_dir() else [item]
    scene_path = Path(args.scene) if args.scene else None
    inputs = stems + [p for p in (scene_path, Path(args.hrtf) if args.hrtf else None) if p is not None]
    if not args.force:
        check_not_an_input(outputs, inputs, hint="name another output, or pass --force to overwrite it")
    if not planned:
        for line in skipped:
            print(f"note: {line}", file=sys.stderr)
    with atomic_paths(outputs) as temps:
        stem_map: dict[str, str] | None = parse_pairs(args.map) if args.map else None
        scene: Scene | Path
        if scene_path is None:
            scene, stems, stem_map = _plan(args, out, outputs[1:], temps[1:])
        else:
            scene = loaded or scene_path  # unreadable: render_files names the problem with the file
        if adm:
            if args.normalize:
                print("note: --normalize does not apply to --format adm (nothing is rendered)", file=sys.stderr)
            summary = export_files(
                stems, scene, out, rate=args.rate, stem_map=stem_map, config=config,
                overwrite_inputs=args.force, write_to=temps[0], progress=not args.quiet,
            ).summary()  # fmt: skip
        else:
            summary = render_files(
                stems,
                scene,
                out,
                fmt=config.fmt,
                hrtf_path=Path(args.hrtf) if args.hrtf else None,
                rate=args.rate,
                block=args.block,
                stem_map=stem_map,
                progress=not args.quiet,
                normalize=args.normalize,
                config=config,
                overwrite_inputs=args.force,
                write_to=temps[0],
            ).summary()
    print(summary, file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in outputs), file=sys.stderr)
    return 0


def _read_scene(path: str | None) -> Scene | None:
    """The scene file read and validated, or None (no --scene, or a file render_files will refuse
    with its own message, after the output checks, as it always has).
    """
    from gravity.errors import GravityError
    from gravity.scene import Scene

    if path is None:
        return None
    try:
        return Scene.load(path)
    except (GravityError, OSError, ValueError):
        return None


def _default_format(scene: Scene | None) -> str:
    """The output format when no --format is given: the format the scene was planned for (its
    ``bed.layout``, the request's ``target_format``) where the renderer has it (5.1, 7.1.4,
    9.1.6, stereo ...), else binaural (iamf, atmos, binaural, no scene or a planned render).
    """
    from renderer.config import FORMATS

    if scene is None:
        return "binaural"
    return scene.layout if scene.layout in FORMATS else "binaural"


def _plan(
    args: argparse.Namespace, out: Path, targets: list[Path], temps: list[Path]
) -> tuple[Scene, list[Path], dict[str, str]]:
    """Analyse the stems, plan a scene, write it and its plot to ``temps`` (named ``targets``).

    Returns the scene (a :class:`gravity.scene.Scene`), the stems used and the stem map.
    """
    from gravity.analysis import analyze_stems
    from gravity.critic import critique
    from gravity.errors import GravityError
    from gravity.pipeline import make_scene
    from gravity.plot import plot_scene
    from gravity.request import Request
    from gravity.scene import Scene, write_json_atomic
    from renderer.config import PLAN_TARGET

    fmt = "binaural" if args.format in ("binaural", "stereo", "foa", "hoa") else args.format
    fmt = "atmos" if fmt == "adm" else fmt  # an ADM export is an object-based master
    fmt = PLAN_TARGET.get(fmt, fmt)  # 0+5+0 plans for 5.1
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
    # the planned scene's scorecard next to what you hear (gravity critique has the whole card)
    print(f"scene by {result.planner}: {critique(request, result.scene).summary()}", file=sys.stderr)
    try:
        write_json_atomic(result.scene, temps[0])
    except OSError as exc:  # a full disk: name the file the user asked for, not our temp file
        raise GravityError(f"{targets[0]}: cannot write it ({exc.strerror or exc})") from exc
    try:
        plot_scene(result.scene, temps[1], title=f"{out.name} ({result.planner})")
    except OSError as exc:
        raise GravityError(f"{targets[1]}: cannot write it ({exc.strerror or exc})") from exc
    scene = Scene.from_dict(result.scene, source=str(targets[0]))
    return scene, [Path(s.path) for s in analysis.analysed], {s.id: s.path for s in analysis.analysed}
