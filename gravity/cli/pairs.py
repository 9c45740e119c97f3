"""``gravity pairs``: preference pairs for DPO, the scene critic ranking the teacher and the model's samples."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity pairs``'s arguments on ``p`` (shared with ``training.cli``)."""
    from training import cli  # argparse only at import; llama.cpp loads inside run_pairs

    cli.add_pairs_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Make the pairs; returns the exit code."""
    from training import cli

    return int(cli.run_pairs(args))
