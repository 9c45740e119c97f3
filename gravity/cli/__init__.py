"""The ``gravity`` command line: one entry with subcommands, plus ``gravity-*`` aliases.

Each subcommand is one module here with ``add_arguments(parser)`` and ``run(args) -> int``; only
the module of the subcommand that runs is imported (so ``gravity validate`` never loads the
renderer, llama.cpp or torch). Every user error (bad file, invalid document, impossible rules)
prints one clear message naming the file and JSON path, exits 1 and writes no output file; a
usage error (unknown option, a value out of range) is one line too, exit 2. No traceback reaches
a user: Ctrl-C exits 130 quietly, a closed pipe (``gravity ... | head``) quietly, running out of
memory is one line, and an unexpected exception (a bug) is one line saying so, exit 70, with the
traceback under ``-vv``. Environment variables are read here only. Nothing outside this package
imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable, NoReturn, Sequence

__all__ = ["main", "build_parser", "COMMANDS", "scene_main", "render_main", "live_main", "convert_main"]

# subcommand -> one-line help; the module gravity.cli.<name> holds its arguments and its run()
COMMANDS: dict[str, str] = {
    "scene": "turn a request into a rule-checked scene",
    "models": "list the models Gravity can load, in resolution order",
    "analyze": "describe stems (loudness, transients, bands, class, tempo) as a request",
    "validate": "check request or scene files; exit 1 on any error",
    "critique": "score a scene against immersive-music practice (the critic's card)",
    "plot": "draw a scene: top view and side view with motion paths",
    "render": "render stems placed by a scene (binaural, stereo, FOA); plans one if none is given",
    "export": "write stems and their scene as an ADM BW64 file (tracks + object metadata) for a DAW",
    "preview": "play stems placed by a scene in real time (binaural, follows scene edits)",
    "live": "follow a DAW over OSC and stream the scene to spatial renderers",
    "ui": "see and edit a scene in the browser (the page gravity live --ui serves)",
    "data": "generate the synthetic training set (JSONL + manifest)",
    "train": "fine-tune a LoRA adapter (prompt-masked SFT, or DPO on preference pairs)",
    "pairs": "rank the teacher and model samples with the scene critic: preference pairs for DPO",
    "eval": "evaluate a model or the planner on held-out requests",
    "convert": "merge an adapter and convert to a quantized GGUF (parity-checked)",
}


EXIT_USAGE = 2  # argparse's code for a usage error
EXIT_BUG = 70  # EX_SOFTWARE (sysexits.h): an internal error, not the user's input
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the message and where to look, not the whole usage
    (``gravity render``'s usage is 30 lines and would bury the one that matters).
    """

    def error(self, message: str) -> NoReturn:
        from gravity.cli.common import one_line
        from gravity.errors import QUOTE_LIMIT

        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message, QUOTE_LIMIT + 100)} (see {self.prog} --help)\n")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` gets its arguments (and its imports).

    With ``argv=None`` every subcommand is built (for documentation tools; slow).
    """
    from gravity import __version__

    p = _Parser(prog="gravity", description="Spatial scenes for immersive audio.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--version", action="version", version=f"gravity {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    want = set(COMMANDS) if argv is None else {_chosen(argv)}
    for name, text in COMMANDS.items():
        s = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if name in want:
            module = importlib.import_module(f"gravity.cli.{name}")
            module.add_arguments(s)
            s.set_defaults(func=module.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gravity`` with ``argv`` (default: the command line); returns the exit code, one line per error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
        logging.basicConfig(
            level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
            format="%(levelname)s %(name)s: %(message)s",
        )
        code = _run(args)
        sys.stdout.flush()  # a reader that left shows here, where it is caught, not at exit
        return code
    except KeyboardInterrupt:  # Ctrl-C: the user knows; no traceback, the shell's code
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `gravity ... | head`: the reader left; say nothing more to it
        _silence_stdout()
        return EXIT_PIPE


def _run(args: argparse.Namespace) -> int:
    """The subcommand, every error it raises as one line (several issues: one line each)."""
    from gravity.cli.common import fail
    from gravity.errors import MAX_ISSUES_SHOWN, GravityError, RuleConflictError, ValidationError

    try:
        return int(args.func(args))
    except ValidationError as exc:
        issues = exc.issues
        if len(issues) == 1 and not isinstance(exc, RuleConflictError):
            return fail(issues[0].format(exc.source))
        n = len(issues)
        head = "rules cannot all hold" if isinstance(exc, RuleConflictError) else f"{n} problem{'s' * (n != 1)}"
        lines = ["  " + i.format(exc.source) for i in issues[:MAX_ISSUES_SHOWN]]
        more = [f"  ... and {n - MAX_ISSUES_SHOWN} more"] if n > MAX_ISSUES_SHOWN else []
        return fail(f"{head}:\n" + "\n".join(lines + more))
    except (GravityError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        return fail(str(exc), getattr(exc, "exit_code", 1))  # a bad setting exits 2, like argparse
    except MemoryError:
        return fail("out of memory (an input too large for this machine?)")
    except RecursionError:  # a structure nested too deep got past every bound: still one line
        return fail("input nested too deeply to process", EXIT_BUG)
    except Exception as exc:  # a bug: one line for the user, the traceback for whoever reports it
        logging.getLogger("gravity").debug("internal error", exc_info=True)
        return fail(
            f"internal error ({type(exc).__name__}: {exc}); this is a bug, please report it "
            f"with the output of the same command run with -vv",
            EXIT_BUG,
        )


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _alias(command: str) -> Callable[[], int]:
    def run() -> int:
        return main([command, *sys.argv[1:]])

    return run


scene_main = _alias("scene")
render_main = _alias("render")
live_main = _alias("live")
convert_main = _alias("convert")
