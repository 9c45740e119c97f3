"""What the subcommands share: one-line errors, ``KEY=VALUE`` lists and the LLM runtime flags."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from gravity.errors import GravityError
from gravity.llm.requant import QUANTS

__all__ = ["fail", "parse_pairs", "add_llm_args", "load_llm", "PLANNER_CHOICES"]

PLANNER_CHOICES = ("auto", "planner", "llm")


def fail(message: str) -> int:
    """Print one error line and return exit code 1."""
    print(f"gravity: error: {message}", file=sys.stderr)
    return 1


def parse_pairs(items: Sequence[str] | None) -> dict[str, str]:
    """``STEM=TEXT`` items (``--hint``, ``--map``) as a dict; a malformed item is a :class:`GravityError`."""
    hints = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise GravityError(f"--hint {item!r}: expected STEM=TEXT, e.g. vox=\"slightly above, front\"")
        hints[key.strip()] = text.strip()
    return hints


def add_llm_args(p: argparse.ArgumentParser) -> None:
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
    """Load the model the planner choice asks for (see :func:`gravity.llm.runtime.model_for`)."""
    from gravity.llm.runtime import LLMConfig, SceneLLM, model_for

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
