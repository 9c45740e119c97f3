"""Command-line pieces for ``gravity data|train|eval|convert`` (wired into ``gravity.cli``).

Each command is a pair: ``add_<cmd>_arguments(parser)`` fills an ``argparse`` parser and
``run_<cmd>(args) -> int`` runs it and returns the exit status. ``python -m training.cli
<cmd> ...`` runs them standalone; ``gravity-convert`` is :func:`convert_main`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

__all__ = [
    "add_data_arguments", "run_data", "add_train_arguments", "run_train", "add_eval_arguments", "run_eval",
    "add_convert_arguments", "run_convert", "convert_main", "main",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity data OUT_DIR [--config JSON] [--set key=value ...] [--force] [--workers N]``."""
    p.add_argument("out_dir", help="folder for train/val/test.jsonl and manifest.json")
    p.add_argument("--config", help="DataConfig JSON preset (unknown keys are errors)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override DataConfig fields")
    p.add_argument("--force", action="store_true", help="rewrite even when the manifest matches")
    p.add_argument("--workers", type=int, default=1, help="processes drawing rows (same files for any count)")


def run_data(args: argparse.Namespace) -> int:
    from training.data import DataConfig, generate

    d = json.loads(Path(args.config).read_text()) if args.config else {}
    d.pop("_comment", None)
    for item in args.set:
        k, _, v = item.partition("=")
        d[k] = json.loads(v) if v[:1] in "0123456789-." else v
    manifest = generate(args.out_dir, DataConfig.from_dict(d), force=args.force, workers=args.workers)
    print(json.dumps(manifest["counts"]))
    return 0


# ----------------------------------------------------------------------------- train
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity train [--config JSON] [--set key=value ...] [--no-resume] [--data-seed N]``."""
    p.add_argument("--config", help="TrainConfig JSON preset, e.g. training/configs/smollm2_cpu.json")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override TrainConfig fields")
    p.add_argument("--no-resume", action="store_true", help="start fresh even when out_dir/last exists")
    p.add_argument("--make-data", action="store_true", help="generate data_dir first (default DataConfig) when missing")


def run_train(args: argparse.Namespace) -> int:
    from training.train import TrainConfig, train

    cfg = TrainConfig.load(args.config, args.set)
    if args.make_data and not (Path(cfg.data_dir) / "manifest.json").is_file():
        from training.data import DataConfig, generate

        generate(cfg.data_dir, DataConfig())
    summary = train(cfg, resume=not args.no_resume)
    print(json.dumps(summary))
    return 0


# ----------------------------------------------------------------------------- eval
def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """``gravity eval [--model GGUF] [--lora GGUF] [--data test.jsonl] [--limit N] [--out report.json]``."""
    p.add_argument("--model", help="GGUF model (default: the runtime's resolution order)")
    p.add_argument("--lora", help="GGUF LoRA adapter applied on --model")
    p.add_argument("--data", default="runs/data/test.jsonl", help="held-out rows (JSONL from gravity data)")
    p.add_argument("--limit", type=int, default=100, help="rows to evaluate (0 = all)")
    p.add_argument("--out", help="write the JSON report here (a .md table is written beside it)")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp CPU threads")
    p.add_argument("--quant", default="auto", help="weight layout to run (gravity.llm.requant; auto = as the runtime does)")
    p.add_argument("--no-grammar", action="store_true", help="sample without the GBNF grammar")
    p.add_argument("--no-pin-hints", action="store_true", help="measure the model's own reading of hints (no parser pins)")
    p.add_argument("--label", default=None, help="name of this model in the report")


def run_eval(args: argparse.Namespace) -> int:
    from training.evaluate import EvalConfig, evaluate, markdown

    cfg = EvalConfig(model_path=args.model, lora_path=args.lora, data=args.data, limit=args.limit,
                     n_threads=args.threads, use_grammar=not args.no_grammar, label=args.label, quant=args.quant,
                     pin_hints=not args.no_pin_hints)
    report = evaluate(cfg)
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
    from training.convert import ConvertConfig, ParityError, convert

    cfg = ConvertConfig(adapter_dir=args.adapter, out=args.out, base=args.base, quant=args.quant, lora_only=args.lora_only,
                        keep_f16=args.keep_f16, verify=not args.no_verify, tolerance=args.tolerance, parity_data=args.data)
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
    p = argparse.ArgumentParser(prog="gravity-convert", description="adapter + base -> merged GGUF -> quantized, verified")
    add_convert_arguments(p)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_convert(p.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.cli {data,train,eval,convert} ...``."""
    p = argparse.ArgumentParser(prog="python -m training.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, add in (("data", add_data_arguments), ("train", add_train_arguments), ("eval", add_eval_arguments),
                      ("convert", add_convert_arguments)):
        add(sub.add_parser(name))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = p.parse_args(argv)
    return {"data": run_data, "train": run_train, "eval": run_eval, "convert": run_convert}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
