"""``gravity train``: fine-tune a LoRA adapter (prompt-masked SFT, or DPO on preference pairs)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity train``'s arguments on ``p`` (shared with ``training.cli``)."""
    from training import cli  # argparse only at import; torch loads inside run_train

    cli.add_train_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Fine-tune the adapter; returns the exit code."""
    from training import cli

    return int(cli.run_train(args))
