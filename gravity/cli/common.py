"""What the subcommands share: one-line errors, ``KEY=VALUE`` lists and the LLM runtime flags."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Sequence

from gravity.cli.settings import add_llm_args, llm_config  # the LLM flags, built from LLMConfig
from gravity.errors import GravityError

__all__ = ["fail", "parse_pairs", "add_llm_args", "llm_config", "load_llm", "PLANNER_CHOICES"]

PLANNER_CHOICES = ("auto", "planner", "llm")


def fail(message: str, code: int = 1) -> int:
    """Print one error line and return ``code`` (1: bad input; 2: bad usage, as argparse)."""
    print(f"gravity: error: {message}", file=sys.stderr)
    return code


def parse_pairs(items: Sequence[str] | None) -> dict[str, str]:
    """``STEM=TEXT`` items (``--hint``, ``--map``) as a dict; a malformed item is a :class:`GravityError`."""
    hints = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise GravityError(f'--hint {item!r}: expected STEM=TEXT, e.g. vox="slightly above, front"')
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
