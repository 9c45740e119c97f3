"""``gravity live``: follow a DAW over OSC and stream the scene to spatial renderers."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from bridge import live

    live.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from bridge import live

    return live.run(args)
