"""``gravity eval``: evaluate a model or the planner on held-out requests."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity eval``'s arguments on ``p`` (shared with ``training.cli``)."""
    from training import cli  # argparse only at import; torch loads inside run_eval

    cli.add_eval_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Evaluate the chosen model or planner; returns the exit code."""
    from training import cli

    return int(cli.run_eval(args))
