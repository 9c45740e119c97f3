"""``gravity preview``: play stems placed by a scene in real time (binaural, follows scene edits)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from renderer import stream

    stream.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from renderer import stream

    return stream.run(args)
