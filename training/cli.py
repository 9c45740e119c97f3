"""Command-line pieces for ``gravity data|train|pairs|eval|convert`` (wired into ``gravity.cli``).

Each command is a pair: ``add_<cmd>_arguments(parser)`` fills an ``argparse`` parser and
``run_<cmd>(args) -> int`` runs it and returns the exit status. ``python -m training.cli
<cmd> ...`` runs them standalone; ``gravity-convert`` is :func:`convert_main`.

Settings come from the config dataclasses through :mod:`gravity.settings` (the same code as the
``gravity`` CLI; this room may not import the CLI itself): ``--set KEY=VALUE`` overrides of
``DataConfig`` / ``TrainConfig`` and ``gravity eval``'s LLM flags from ``LLMConfig``. A bad
setting is one line naming the key and what is allowed, exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Sequence

from gravity.errors import GravityError, UsageError
from gravity.settings import add_arguments, describe, from_args, load

__all__ = [
    "add_data_arguments",
    "run_data",
    "add_train_arguments",
    "run_train",
    "add_pairs_arguments",
    "run_pairs",
    "add_eval_arguments",
    "run_eval",
    "add_convert_arguments",
    "run_convert",
    "convert_main",
    "main",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity data OUT_DIR [--config JSON] [--set key=value ...] [--force] [--workers N]``."""
    p.add_argument("out_dir", help="folder for train/val/test.jsonl and manifest.json")
    p.add_argument("--config", help="DataConfig JSON preset (unknown keys are errors)")
    from training.data import DataConfig

    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help=f"override DataConfig settings (defaults: {describe(DataConfig)})",
    )
    p.add_argument("--force", action="store_true", help="rewrite even when the manifest matches")
    p.add_argument("--workers", type=int, default=1, help="processes drawing rows (same files for any count)")
    p.add_argument(
        "--from-edits",
        metavar="DIR",
        help="instead: SFT rows and preference pairs (edited = chosen) from the live UI's edit logs in DIR "
        "(edits-NNNNNN.jsonl, e.g. ~/.local/share/gravity/edits)",
    )


def run_data(args: argparse.Namespace) -> int:
    """Generate the training set; prints its counts and returns the exit code."""
    from training.data import DataConfig, generate

    if args.from_edits:
        from training.edits import write_edit_data

        if args.config or args.set:
            raise UsageError("--from-edits takes no --config or --set: the rows come from the edits as they are")
        print(json.dumps(write_edit_data(args.from_edits, args.out_dir)["counts"]))
        return 0
    if not 1 <= args.workers <= 256:
        raise UsageError(f"--workers {args.workers}: expected 1..256 processes")
    cfg = load(DataConfig, args.config, args.set)
    manifest = generate(args.out_dir, cfg, force=args.force, workers=args.workers)
    print(json.dumps(manifest["counts"]))
    return 0


# ----------------------------------------------------------------------------- train
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity train [--config JSON] [--method sft|dpo] [--set key=value ...] [--no-resume]``."""
    p.add_argument("--config", help="TrainConfig JSON preset, e.g. training/configs/smollm2_cpu.json")
    from training.train import TrainConfig  # standard library only at import

    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help=f"override TrainConfig settings (defaults: {describe(TrainConfig)})",
    )
    p.add_argument(
        "--method",
        choices=("sft", "dpo"),
        default=None,
        help="sft (train.jsonl) or dpo (pairs_*.jsonl from gravity pairs; needs init_adapter): "
        "short for --set method=...",
    )
    p.add_argument("--no-resume", action="store_true", help="start fresh even when out_dir/last exists")
    p.add_argument("--make-data", action="store_true", help="generate data_dir first (default DataConfig) when missing")


def run_train(args: argparse.Namespace) -> int:
    """Train (making the data first with ``--make-data``); prints the summary and returns the exit code."""
    from training.train import TrainConfig, train

    overrides = [*args.set, *([f"method={args.method}"] if getattr(args, "method", None) else [])]
    cfg = load(TrainConfig, args.config, overrides)
    if args.make_data and not (Path(cfg.data_dir) / "manifest.json").is_file():
        from training.data import DataConfig, generate

        generate(cfg.data_dir, DataConfig())
    summary = train(cfg, resume=not args.no_resume)
    print(json.dumps(summary))
    return 0


# ----------------------------------------------------------------------------- pairs
def add_pairs_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity pairs DATA_DIR OUT_DIR [--candidates K] [--limit N] [--val N] [--margin M]``
    plus the LLM flags of ``gravity scene`` (``--model auto|GGUF``, ``--temperature``, ``--threads``...).
    """
    from gravity.llm.config import LLMConfig  # no numpy, no llama.cpp
    from training.pairs import MARGIN

    p.add_argument("data_dir", help="folder with train.jsonl / val.jsonl (gravity data)")
    p.add_argument("out_dir", help="folder for pairs_train.jsonl, pairs_val.jsonl and pairs_manifest.json")
    p.add_argument("--candidates", type=int, default=4, metavar="K", help="model samples per row (default: 4)")
    p.add_argument("--limit", type=int, default=200, help="train rows to sample (0 = all; default: 200)")
    p.add_argument("--val", type=int, default=20, metavar="N", help="val rows to sample (default: 20)")
    p.add_argument(
        "--margin",
        type=float,
        default=MARGIN,
        help=f"critic score the chosen scene must gain at equal adherence (default: {MARGIN:g})",
    )
    # samples at the runtime's defaults but warmer, for different scenes per row; patient
    add_arguments(
        p, LLMConfig, title="LLM runtime", skip=("candidates",), defaults={"temperature": 0.7, "timeout_s": 60.0}
    )


def run_pairs(args: argparse.Namespace) -> int:
    """Sample, rank and write the pairs; prints the counts and returns the exit code."""
    import dataclasses

    from gravity.llm.config import LLMConfig
    from gravity.llm.runtime import SceneLLM
    from training.pairs import write_pairs

    if not 1 <= args.candidates <= LLMConfig.MAX_CANDIDATES:
        raise GravityError(f"--candidates {args.candidates}: expected 1..{LLMConfig.MAX_CANDIDATES}")
    for flag, n in (("--limit", args.limit), ("--val", args.val)):
        if n < 0:
            raise GravityError(f"{flag} {n}: expected 0 or more rows")
    if not (math.isfinite(args.margin) and 0.0 <= args.margin <= 1.0):
        raise GravityError(f"--margin {args.margin}: expected a critic score difference in 0..1")
    for split in ("train", "val"):  # before the model loads: a wrong folder fails in a moment
        if not (Path(args.data_dir) / f"{split}.jsonl").is_file():
            raise GravityError(f"{args.data_dir}: no {split}.jsonl (a folder written by gravity data)")
    cfg = from_args(LLMConfig, args)
    if cfg.model_path == "auto":  # the runtime's default model
        cfg = dataclasses.replace(cfg, model_path=None)
    llm = SceneLLM(cfg)
    lora = cfg.lora_path or llm.info.lora  # the shipped adapter rides on the embedded base
    settings = {
        "model": llm.name,
        "lora": Path(lora).name if lora else None,
        **{k: getattr(cfg, k) for k in ("seed", "temperature", "top_p", "pin_hints", "quant", "use_grammar")},
    }
    manifest = write_pairs(
        args.data_dir,
        args.out_dir,
        llm,
        args.candidates,
        limit=args.limit,
        n_val=args.val,
        margin=args.margin,
        settings=settings,
    )
    print(json.dumps(manifest["counts"]))
    return 0


# ----------------------------------------------------------------------------- eval
def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity eval [--model GGUF|planner] [--lora GGUF] [--data test.jsonl | --edits DIR [--edits-split S]]
    [--limit N] [--out report.json]`` plus the LLM flags of ``gravity scene`` (from ``LLMConfig``),
    sampling greedily by default.
    """
    from gravity.llm.config import LLMConfig  # no numpy, no llama.cpp

    p.add_argument("--data", default="runs/data/test.jsonl", help="held-out rows (JSONL from gravity data)")
    p.add_argument("--limit", type=int, default=100, help="rows to evaluate (0 = all)")
    p.add_argument("--out", help="write the JSON report here (a .md table is written beside it)")
    p.add_argument("--label", default=None, help="name of this model in the report")
    p.add_argument(
        "--edits",
        metavar="DIR",
        help="instead of --data: score against the producer's edits in DIR (edits-NNNNNN.jsonl): the angle "
        "from each proposal to the edited scene, before (the logged proposal) and now",
    )
    p.add_argument(
        "--edits-split",
        choices=("val", "train", "all"),
        default="val",
        help="which edits --edits scores: val (default: those gravity data --from-edits holds out of "
        "training), train, or all (logs never trained on)",
    )
    # --model planner scores the planner baseline; greedy and patient: the report measures the
    # model, not the sampler or the deadline (as evaluate() does without a runtime config)
    add_arguments(p, LLMConfig, title="LLM runtime", defaults={"temperature": 0.0, "timeout_s": 60.0})


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate; prints the Markdown table (also written beside ``--out``) and returns the exit code."""
    from gravity.llm.config import LLMConfig
    from training.evaluate import EvalConfig, evaluate, markdown

    if args.limit < 0:
        raise UsageError(f"--limit {args.limit}: expected 0 (all rows) or more")
    if args.edits is None and args.edits_split != "val":
        raise UsageError("--edits-split needs --edits DIR")
    llm = from_args(LLMConfig, args)
    cfg = EvalConfig(
        model_path=llm.model_path,
        lora_path=llm.lora_path,
        data=args.data,
        limit=args.limit,
        n_threads=llm.n_threads,
        use_grammar=llm.use_grammar,
        temperature=llm.temperature,
        label=args.label,
        quant=llm.quant,
        pin_hints=llm.pin_hints,
    )
    if args.edits is not None:
        from training.taste import evaluate_edits, markdown_edits

        report = evaluate_edits(args.edits, cfg, runtime=llm, split=args.edits_split)
        md = markdown_edits([report])
    else:
        report = evaluate(cfg, runtime=llm)
        md = markdown([report])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(md)
    print(md)
    return 0


# ----------------------------------------------------------------------------- convert
def add_convert_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity convert ADAPTER_DIR OUT [--quant Q8_0] [--lora-gguf OUT] [--no-verify]``."""
    p.add_argument("adapter", help="PEFT adapter folder written by gravity train (best/ or last/)")
    p.add_argument("out", help="output GGUF path (merged, quantized) or, with --lora-only, the LoRA GGUF")
    p.add_argument("--base", default=None, help="base override (default: train_config.json's base)")
    p.add_argument("--quant", default="Q8_0", help="Q8_0 (default), Q4_K_M, Q5_K_M, Q4_0, F16 ...")
    p.add_argument("--lora-only", action="store_true", help="write a GGUF LoRA adapter instead of a merged model")
    p.add_argument("--keep-f16", action="store_true", help="keep the intermediate f16 GGUF")
    p.add_argument("--no-verify", action="store_true", help="skip the llama.cpp vs transformers parity check")
    p.add_argument("--tolerance", type=float, default=None, help="max |mean log-likelihood delta| in nats/token")
    p.add_argument("--data", default=None, help="JSONL rows for the parity check (default: built-in examples)")


def run_convert(args: argparse.Namespace) -> int:
    """Merge and convert; returns 0, or 3 when the parity check fails."""
    from training.convert import ConvertConfig, ParityError, convert

    cfg = ConvertConfig(
        adapter_dir=args.adapter,
        out=args.out,
        base=args.base,
        quant=args.quant,
        lora_only=args.lora_only,
        keep_f16=args.keep_f16,
        verify=not args.no_verify,
        tolerance=args.tolerance,
        parity_data=args.data,
    )
    try:
        result = convert(cfg)
    except ParityError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2))
    return 0


def convert_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gravity-convert``."""
    p = argparse.ArgumentParser(
        prog="gravity-convert", description="adapter + base -> merged GGUF -> quantized, verified"
    )
    add_convert_arguments(p)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_convert(p.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.cli {data,train,pairs,eval,convert} ...``."""
    p = argparse.ArgumentParser(prog="python -m training.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, add in (
        ("data", add_data_arguments),
        ("train", add_train_arguments),
        ("pairs", add_pairs_arguments),
        ("eval", add_eval_arguments),
        ("convert", add_convert_arguments),
    ):
        add(sub.add_parser(name))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = p.parse_args(argv)
    try:
        runs = {"data": run_data, "train": run_train, "pairs": run_pairs, "eval": run_eval, "convert": run_convert}
        return runs[args.cmd](args)
    except GravityError as exc:  # a bad setting (exit 2), a missing file...: one line, no traceback
        print(f"{p.prog} {args.cmd}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))


if __name__ == "__main__":
    sys.exit(main())
