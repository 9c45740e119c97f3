"""``gravity data``: generate the synthetic training set (JSONL + manifest)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity data``'s arguments on ``p`` (shared with ``training.cli``)."""
    from training import cli  # argparse only at import; torch loads inside run_data

    cli.add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Generate the training set; returns the exit code."""
    from training import cli

    return int(cli.run_data(args))
