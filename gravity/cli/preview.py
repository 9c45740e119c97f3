"""``gravity preview``: play stems placed by a scene in real time (binaural, follows scene edits).

The player is :class:`renderer.player.Player`; it (and numpy, the renderer, PortAudio) is
imported only when the command runs, so ``gravity preview --help`` stays light.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from gravity.cli.common import fail, float_in, int_in
from gravity.errors import GravityError, UsageError, quote

__all__ = ["add_arguments", "run", "preview_main", "list_devices", "check_output_device"]

LIST_HINT = "gravity preview --list-devices lists them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity preview``'s arguments (stems, scene, device, block, rate, loop) on ``p``."""
    p.add_argument("stems", nargs="*", type=Path, help="stem files")
    p.add_argument("--scene", type=Path, help="scene JSON (reloaded when it changes)")
    p.add_argument("--device", help="output device index or name (see --list-devices)")
    p.add_argument("--block", type=int_in(16, 16384), default=512, help="block size in samples, 16..16384")
    p.add_argument("--rate", type=int_in(8000, 192000), default=48000, help="sample rate in Hz, 8000..192000")
    seconds = float_in(0.0, 86400.0)
    p.add_argument("--loop", type=seconds, nargs=2, metavar=("START", "END"), help="loop between two times in seconds")
    p.add_argument("--start", type=seconds, default=0.0, help="start time in seconds")
    p.add_argument("--duration", type=float_in(0.0, 86400.0, lo_open=True), help="seconds to play")
    p.add_argument(
        "--head-port",
        metavar="[HOST:]PORT",
        help="head tracking: read ADM-OSC /adm/lis/ypr or IEM /SceneRotator/ypr, /SceneRotator/quaternions "
        "on this UDP port (127.0.0.1 unless a HOST is given; 0.0.0.0 for a phone on the network) and "
        "turn the scene against the head",
    )
    p.add_argument("--no-interactive", action="store_true", help="play once, read no commands")
    p.add_argument("--list-devices", action="store_true", help="list output devices")


def run(args: argparse.Namespace) -> int:
    """Run ``gravity preview`` from parsed arguments; returns the exit code."""
    if args.list_devices:
        print(list_devices())
        return 0
    if not args.stems or args.scene is None:
        return fail("preview: give stem files and --scene", 2)
    if args.loop and not args.loop[0] < args.loop[1]:
        raise UsageError(f"--loop {args.loop[0]:g} {args.loop[1]:g}: START must come before END")
    return preview_main(
        args.stems,
        args.scene,
        device=device_arg(args.device),
        block=args.block,
        rate=args.rate,
        loop=tuple(args.loop) if args.loop else None,
        start_s=args.start,
        duration_s=args.duration,
        interactive=not args.no_interactive,
        head_port=head_port_arg(args.head_port),
    )


def list_devices() -> str:
    """PortAudio host APIs and output devices, one per line."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    lines = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_output_channels"] > 0:
            lines.append(f"{i:3d}  {d['name']}  ({apis[d['hostapi']]['name']}, {d['max_output_channels']} out)")
    return "\n".join(lines) or "no output devices"


def check_output_device(device: int | str | None) -> None:
    """Refuse, before any stem is loaded, a device PortAudio cannot play to.

    Raises
    ------
    GravityError
        No output device at all (a server, a container), no default one, or ``device`` names
        none; the message says how to list them.
    """
    try:
        import sounddevice as sd

        devices: list[dict[str, Any]] = [dict(d) for d in sd.query_devices()]
        default = sd.default.device[1]
    except (OSError, ImportError) as exc:  # no PortAudio library, or it cannot start
        raise GravityError(f"preview: no audio system ({exc}); render to a file with gravity render") from None
    outputs = [i for i, d in enumerate(devices) if d.get("max_output_channels", 0) > 0]
    if not outputs:
        raise GravityError(
            "preview: no audio output device found (none that PortAudio can open: no sound card, or a "
            f"server or container); {LIST_HINT}, and gravity render writes the same mix to a file"
        )
    if device is None:
        if isinstance(default, int) and default in outputs:
            return
        raise GravityError(f"preview: no default output device; choose one with --device ({LIST_HINT})")
    if isinstance(device, int):
        if device not in outputs:
            raise UsageError(f"--device {device}: no output device has that index ({LIST_HINT})")
        return
    if not any(device.lower() in str(devices[i].get("name", "")).lower() for i in outputs):
        raise UsageError(f"--device {quote(device, 60)}: no output device's name contains it ({LIST_HINT})")


def head_port_arg(value: str | None) -> tuple[str, int] | None:
    """``--head-port [HOST:]PORT`` as (host, port); None when not given."""
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    try:
        n = int(port)
    except ValueError:
        n = -1
    if not 1 <= n <= 65535:
        raise UsageError(f"--head-port {quote(value, 60)}: expected [HOST:]PORT with PORT 1..65535")
    return host or "127.0.0.1", n


def device_arg(value: str | None) -> int | str | None:
    """A PortAudio device from the command line: an index when all digits, else a name (substring)."""
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def preview_main(
    stems: Sequence[Path | str],
    scene_path: Path | str,
    *,
    device: int | str | None = None,
    block: int = 512,
    rate: int = 48000,
    loop: tuple[float, float] | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    interactive: bool = True,
    head_port: tuple[str, int] | None = None,
) -> int:
    """Preview stems through a scene on a sound card; returns a process exit code.

    Parameters
    ----------
    stems, scene_path : paths
        Stem files and the scene JSON (reloaded live when it changes).
    device : int or str, optional
        Output device index or name; default device when None.
    block : int
        Callback block size in samples.
    rate : int
        Sample rate in Hz.
    loop : (float, float), optional
        Loop start / end in seconds.
    start_s : float
        Start position in seconds.
    duration_s : float, optional
        Play this many seconds (default: to the end of the render).
    interactive : bool
        Read commands from stdin: ``p`` play/pause, ``s`` stop, ``> 12.5`` seek (seconds),
        ``l 4 12`` loop (``l`` alone clears), ``q`` quit. Otherwise play once and return
        (with ``loop``: until Ctrl-C).
    head_port : (str, int), optional
        Head tracking: read poses (:mod:`bridge.head`) on this UDP host and port; the player
        then renders just in time and turns the scene against the head.
    """
    from gravity.scene import Scene

    try:
        Scene.load(scene_path)  # the scene's own errors first: reading it costs nothing
        check_output_device(device)  # then the device, before the renderer loads and the stems render
    except GravityError as exc:
        return fail(str(exc), getattr(exc, "exit_code", 1))
    from renderer.errors import RenderError
    from renderer.player import Player

    head = None
    if head_port is not None:
        from renderer.listener import Listener

        head = Listener()
    try:
        player = Player(
            stems,
            scene_path,
            device=device,
            block=block,
            rate=rate,
            loop=loop,
            start_s=start_s,
            end_s=None if duration_s is None else start_s + duration_s,
            head=head,
        )
        player.open()
    except Exception as exc:  # bad stems / scene / device: one clear line
        return fail(f"preview: {exc}")
    tracker = None
    if head is not None and head_port is not None:
        try:
            tracker = _head_listener(head, *head_port)
        except Exception as exc:  # port in use, bad host: one clear line
            player.close()
            return fail(f"preview: --head-port {head_port[0]}:{head_port[1]}: {exc}")
    cmds: queue.Queue[str] = queue.Queue()
    if interactive:

        def reader() -> None:
            for line in sys.stdin:
                cmds.put(line.strip())
            cmds.put("q")

        threading.Thread(target=reader, name="preview-stdin", daemon=True).start()
        print("commands: p play/pause, s stop, > SECONDS seek, l START END loop, q quit", file=sys.stderr)
    player.play()
    try:
        while True:
            if tracker is not None:
                tracker.events.drain()
            print("\r" + player.stats().line(), end="", file=sys.stderr, flush=True)
            if not interactive and player.wait(0.2):
                break
            try:
                c = cmds.get(timeout=0.2) if interactive else ""
            except queue.Empty:
                continue
            parts = c.split()
            if not parts:
                continue
            try:
                if parts[0] == "q":
                    break
                if parts[0] == "p":
                    player.toggle()
                elif parts[0] == "s":
                    player.stop()
                elif parts[0] == ">" and len(parts) == 2:
                    player.seek(float(parts[1]))
                elif parts[0] == "l":
                    player.set_loop(*map(float, parts[1:3])) if len(parts) == 3 else player.set_loop(None)
                else:
                    print(f"\nunknown command {quote(c, 60)}", file=sys.stderr)
            except (ValueError, RenderError) as exc:
                print(f"\n{exc}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        if tracker is not None:
            tracker.stop()
            tracker.sock.close()
            tracker.events.drain()
        player.close()
        print("\r" + player.stats().line(), file=sys.stderr)
    return 0


def _head_listener(head: Any, host: str, port: int) -> Any:
    """A started listener thread that reads head poses on ``host:port`` into ``head``."""
    import logging

    from bridge.daw import DawListener
    from bridge.head import HeadDispatcher, HeadInput
    from bridge.oscio import bind_udp
    from bridge.ratelog import RateLimitedLog

    events = RateLimitedLog(logging.getLogger("gravity.head"))
    tracker = DawListener(bind_udp(host, port), HeadDispatcher(HeadInput(head)), events)
    tracker.start()
    print(f"head tracking: poses on {host}:{port} (/adm/lis/ypr, /SceneRotator/ypr, ...)", file=sys.stderr)
    return tracker
