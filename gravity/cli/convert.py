"""``gravity convert``: merge an adapter and convert to a quantized GGUF (parity-checked)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity convert``'s arguments on ``p`` (shared with ``training.cli``)."""
    from training import cli  # argparse only at import; torch loads inside run_convert

    cli.add_convert_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Merge and convert the adapter (torch loads only here); returns the exit code."""
    from training import cli

    return int(cli.run_convert(args))
