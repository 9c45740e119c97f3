"""What the subcommands share: one-line errors, argparse types with ranges, ``KEY=VALUE`` lists
and the LLM runtime flags.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from gravity.cli.settings import add_llm_args, llm_config  # the LLM flags, built from LLMConfig
from gravity.atomic import clobbered
from gravity.errors import QUOTE_LIMIT, GravityError, UsageError, clip, quote

__all__ = [
    "fail",
    "one_line",
    "parse_pairs",
    "int_in",
    "float_in",
    "SEED",
    "refuse_clobber",
    "add_llm_args",
    "llm_config",
    "load_llm",
    "PLANNER_CHOICES",
]

PLANNER_CHOICES = ("auto", "planner", "llm")
LINE_LIMIT = 4 * QUOTE_LIMIT  # characters of one error line: a path, a quoted value and the message


def one_line(message: str, limit: int = LINE_LIMIT) -> str:
    """``message`` as one line of at most about ``limit`` characters (a safety net: errors quote
    user values with :func:`gravity.errors.quote` where they embed them).
    """
    return clip(" ".join(message.split()), limit)


def fail(message: str, code: int = 1) -> int:
    """Print the error and return ``code`` (1: bad input; 2: bad usage, as argparse).

    One line; a message of several lines (a list of issues) keeps its lines, each shortened and
    indented under the first.
    """
    lines = message.splitlines() or [""]
    rest = ["  " + one_line(line) for line in lines[1:] if line.strip()]
    print("\n".join([f"gravity: error: {one_line(lines[0])}", *rest]), file=sys.stderr)
    return code


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type=``: an integer within ``lo..hi`` (``--block 0`` is a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quote(text, 40)}: expected an integer {lo}..{hi}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{quote(value, 40)}: expected an integer {lo}..{hi}")
        return value

    parse.__name__ = f"integer {lo}..{hi}"
    return parse


def float_in(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=``: a finite number within ``lo..hi`` (``lo`` excluded with ``lo_open``);
    ``nan``, ``inf`` and out-of-range values are usage errors (exit 2).
    """
    span = f"{'above ' + format(lo, 'g') if lo_open else format(lo, 'g')}..{hi:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quote(text, 40)}: expected a number {span}") from None
        if not (math.isfinite(value) and (lo < value if lo_open else lo <= value) and value <= hi):
            raise argparse.ArgumentTypeError(f"{quote(text, 40)}: expected a finite number {span}")
        return value

    parse.__name__ = f"number {span}"
    return parse


#: A proposer seed: llama.cpp and numpy take an unsigned 32-bit seed.
SEED = int_in(0, 2**32 - 1)


def refuse_clobber(output: str | Path | None, inputs: Sequence[str | Path | None]) -> None:
    """Refuse an output that is one of the inputs (the same file, by any name), before any work.

    Raises
    ------
    UsageError
        ``-o`` names an input (exit 2): writing it would destroy the input.
    """
    pair = clobbered([output], inputs)
    if pair is not None:
        raise UsageError(f"-o {pair[0]}: is the input {pair[1]}; name another file")


def parse_pairs(items: Sequence[str] | None) -> dict[str, str]:
    """``STEM=TEXT`` items (``--hint``, ``--map``) as a dict; a malformed item is a :class:`GravityError`."""
    hints = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise GravityError(f'--hint {quote(item, 60)}: expected STEM=TEXT, e.g. vox="slightly above, front"')
        hints[key.strip()] = text.strip()
    return hints


def load_llm(args: argparse.Namespace, planner: str) -> object | None:
    """Load the model the planner choice asks for (see :func:`gravity.llm.runtime.model_for`)."""
    from gravity.llm.runtime import SceneLLM, model_for

    info = model_for(planner, args.model)
    if info is None:
        return None
    print(f"model: {info.path} ({info.source})", file=sys.stderr)
    cfg = replace(llm_config(args), model_path=str(info.path))
    llm = SceneLLM(cfg, info)
    if llm.model_file != info.path:
        print(f"running as {llm.model_file}", file=sys.stderr)
    return llm
