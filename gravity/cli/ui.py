"""``gravity ui``: see and edit a scene file in the browser (the page ``gravity live --ui`` serves).

The scene loops at the frame rate; drags, widths, gains and locks are checked by the rule
engine against the request (``--request``; without one, only what every scene must keep) and,
with ``--out``, written back there after every accepted edit. With a request, a prompt or a stem
hint re-plans the scene (deterministic planner). Accepted edits are recorded as training data
(:mod:`bridge.ui.record`) unless ``--no-record``. Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from gravity.cli.common import refuse_clobber
from gravity.errors import UsageError, quote

if TYPE_CHECKING:
    from bridge.ui.server import UIServer
    from bridge.ui.session import UISession

__all__ = ["add_arguments", "run", "add_ui_arguments", "start_ui"]

log = logging.getLogger("gravity.ui")


def add_ui_arguments(p: argparse.ArgumentParser, *, flag: bool) -> None:
    """The page's address flags: ``--ui [PORT]`` (``flag``, for ``gravity live``) or ``--port``, and
    ``--ui-host``, ``--no-record``.
    """
    from bridge.ui import DEFAULT_PORT

    if flag:
        p.add_argument(
            "--ui",
            nargs="?",
            type=int,
            const=DEFAULT_PORT,
            default=None,
            metavar="PORT",
            help=f"serve the browser monitor and editor on 127.0.0.1:PORT (default {DEFAULT_PORT}; 0: any free port)",
        )
    else:
        p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"page port (default {DEFAULT_PORT}; 0: any)")
    p.add_argument(
        "--ui-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the page listens on (default 127.0.0.1; any other, e.g. 0.0.0.0 for a tablet, "
        "needs the token printed at start)",
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="do not record accepted edits (default: $GRAVITY_DATA/edits, else $XDG_DATA_HOME/gravity/edits, "
        "else ~/.local/share/gravity/edits)",
    )


def start_ui(session: UISession, host: str, port: int, record: bool) -> UIServer:
    """Start the page for ``session`` and print its address (and where edits go) to stderr.

    Raises :class:`~bridge.errors.BridgeError` (one line) when the port is out of range or taken.
    """
    from bridge.errors import BridgeError
    from bridge.ui.record import EditLog, edits_dir
    from bridge.ui.server import UIServer

    if not 0 <= port <= 65535:
        raise BridgeError(f"--ui {port}: a port is 0..65535")
    folder = edits_dir()
    server = UIServer(session, host=host, port=port, edit_log=EditLog(folder) if record else None)
    server.start()
    print(f"gravity: browser monitor and editor at {server.url}", file=sys.stderr)
    if server.token is not None:
        print(
            f"gravity: the page listens on {host}, beyond this machine: open it with the token above "
            "(anyone on the network who has it can steer the mix)",
            file=sys.stderr,
        )
    print(
        f"gravity: accepted edits are recorded in {folder}" if record else "gravity: edits are not recorded",
        file=sys.stderr,
    )
    return server


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity ui``'s arguments on ``p``."""
    p.add_argument("scene", help="scene JSON file")
    p.add_argument(
        "--request", metavar="FILE", help="the request the scene answers: its rules check edits; prompts re-plan"
    )
    p.add_argument("-o", "--out", metavar="FILE", help="write the edited scene here after every accepted edit")
    p.add_argument("--rate", type=float, default=50.0, metavar="HZ", help="frames per second to the page (default 50)")
    add_ui_arguments(p, flag=False)


def run(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C (or SIGTERM); returns 0."""
    from bridge.ui.session import FileSession
    from gravity.schema import load_request, read_json

    if not 1.0 <= args.rate <= 200.0:
        raise UsageError(f"--rate {args.rate:g}: must be 1..200 Hz")
    if args.out:
        refuse_clobber(args.out, [args.scene, args.request])
        if not Path(args.out).resolve().parent.is_dir():
            raise UsageError(f"--out {quote(args.out, 80)}: its folder does not exist")
    doc = read_json(args.scene)
    request = load_request(args.request) if args.request else None
    session = FileSession(doc, request, rate_hz=args.rate, out=args.out, source=f"file:{Path(args.scene).name}")
    session.start()
    try:
        server = start_ui(session, args.ui_host, args.port, not args.no_record)
    except BaseException:
        session.stop()
        raise
    gc.freeze()  # start-up's objects out of the collector's full passes (see gravity live)
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        session.stop()
        for s, h in old.items():
            signal.signal(s, h)
    st = server.stats()
    print(
        f"gravity ui: {st['edits']} edit(s) accepted, {st['refused']} refused, {st['recorded']} recorded",
        file=sys.stderr,
    )
    return 0
