"""DAW input: the OSC listener, its dispatch table, and the AbletonOSC subscription client.

One UDP port takes every namespace at once (they do not overlap):

REAPER (its default pattern file, see ``examples/daw/Gravity.ReaperOSC``)
    ``/play``, ``/stop``, ``/pause``, ``/record`` (flag, or no argument = 1), ``/time f`` seconds,
    ``/beat/str s``, ``/tempo/raw f`` bpm, ``/marker/@/name s``, ``/marker/@/time f`` seconds,
    ``/lastmarker/name s``, ``/lastmarker/time f``, ``/track/@/name s``; regions the way
    markers are: ``/region/@/name s``, ``/region/@/time f`` (a region's start is a section
    start; REAPER's ``REGION_NAME``/``REGION_TIME`` patterns) and ``/lastregion/name s``,
    ``/lastregion/time f`` (the region under the playhead: switches the section at once;
    ``LAST_REGION_NAME``/``LAST_REGION_TIME``). A region's end is not a boundary: the next
    region or marker is. The rest of REAPER's feedback (``/track/...`` meters, ``/fx/...``,
    region lengths and numbers, and so on) is ignored quietly.
Ableton Live via AbletonOSC (replies and listener updates; Gravity sends the ``start_listen``
requests itself, see :class:`AbletonClient`)
    ``/live/song/get/tempo``, ``/live/song/get/is_playing``, ``/live/song/get/current_song_time``
    (beats), ``/live/song/get/beat``, ``/live/song/get/signature_numerator``,
    ``/live/song/get/signature_denominator``, ``/live/song/get/cue_points`` (name, beats pairs),
    ``/live/startup``.
Gravity's own namespace (documented in ``examples/daw/README.md``)
    ``/gravity/transport s`` (``play``/``stop``) or ``/gravity/transport i [f [f]]`` (playing,
    position s, bpm); ``/gravity/tempo f [i [i]]`` (bpm, beats per bar, beat unit);
    ``/gravity/section s``; ``/gravity/marker s f`` (name, seconds); ``/gravity/markers/clear``;
    ``/gravity/scene s [s]`` (scene file, section); ``/gravity/prompt s``.

The dispatch table (address template -> handler) is built in one place,
:func:`build_dispatch_table`, and injected into each :class:`Dispatcher`; numeric path segments
match REAPER's ``@`` wildcard and are passed to the handler. Handlers validate their arguments
(:class:`BadArgs` otherwise), update the transport or hand work to other threads through the
:class:`DawHooks`; they never block. Messages in a target's namespace (``/adm/...``,
``/source/...``) are echoes of our own output and are dropped, so a renderer that reflects
values back cannot start a feedback loop.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import BridgeError, OscParseError
from .oscio import OscMessage, decode_packet, encode_message
from .ratelog import RateLimitedLog
from .transport import Transport

__all__ = [
    "BadArgs",
    "DawHooks",
    "Dispatcher",
    "DawListener",
    "AbletonClient",
    "build_dispatch_table",
    "REAPER_IGNORED",
    "address_template",
]

log = logging.getLogger(__name__)

Handler = Callable[[OscMessage, tuple[int, ...]], None]

REAPER_IGNORED: tuple[str, ...] = (
    "/track",
    "/master",
    "/fx",
    "/fxeq",
    "/fxparam",
    "/fxinst",
    "/region",
    "/lastregion",
    "/samples",
    "/frames",
    "/time/str",
    "/tempo",
    "/playrate",
    "/click",
    "/repeat",
    "/replace",
    "/anysolo",
    "/scroll",
    "/zoom",
    "/action",
    "/vkb_midi",
    "/marker",
    "/lastmarker",
    "/marker_id",
    "/region_id",
    "/loop",
    "/rewind",
    "/forward",
    "/scrub",
    "/autorecarm",
    "/soloreset",
    "/bymarker",
    "/editloop",
    "/device",
    "/reaper",
    "/live",
)
"""Address prefixes known to be DAW feedback Gravity does not use (quietly ignored)."""

MAX_TIME_S = 7 * 24 * 3600.0
"""Largest playhead accepted, seconds (anything beyond is an absurd value)."""
REGION_SLOT_BASE = 10**9
"""Regions share the transport's marker slots above this key: REAPER numbers its region slots
from 1 like its marker slots, and :func:`address_template` reads at most 9 digits, so
``REGION_SLOT_BASE + k`` never meets a marker slot."""


class BadArgs(BridgeError, ValueError):
    """A known address with arguments of the wrong type, count or range."""


@dataclass(frozen=True)
class DawHooks:
    """What handlers may trigger outside the transport (all must return at once).

    Attributes
    ----------
    wake : callable
        A section event happened: emit a frame now.
    replan : callable
        Markers, tempo or time signature changed: plan the sections again (debounced).
    load_scene : callable
        ``load_scene(path, section_or_None)``: load and pin a scene file (in the planner thread).
    prompt : callable
        ``prompt(text)``: re-plan with a new scene-level prompt.
    resubscribe : callable
        A DAW (re)started: send subscription requests again.
    track_name : callable
        ``track_name(index, name)``: a DAW track name (REAPER ``/track/@/name``).
    """

    wake: Callable[[], None] = lambda: None
    replan: Callable[[], None] = lambda: None
    load_scene: Callable[[str, str | None], None] = lambda _path, _section: None
    prompt: Callable[[str], None] = lambda _text: None
    resubscribe: Callable[[], None] = lambda: None
    track_name: Callable[[int, str], None] = lambda _index, _name: None


# ------------------------------------------------------------------------------ argument helpers
def _num(msg: OscMessage, i: int = 0, lo: float = -math.inf, hi: float = math.inf) -> float:
    if i >= len(msg.args):
        raise BadArgs(f"{msg.address} needs a number as argument {i + 1}, got {len(msg.args)} argument(s)")
    v = msg.args[i]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise BadArgs(f"{msg.address}: argument {i + 1} = {v!r} is not a number in {lo:g}..{hi:g}")
    return float(v)


def _last_num(msg: OscMessage, lo: float, hi: float) -> float:
    """The last numeric argument (AbletonOSC replies sometimes lead with an id)."""
    for i in range(len(msg.args) - 1, -1, -1):
        if isinstance(msg.args[i], (int, float)) and not isinstance(msg.args[i], bool):
            return _num(msg, i, lo, hi)
    raise BadArgs(f"{msg.address} needs a number")


def _flag(msg: OscMessage) -> bool:
    """REAPER trigger/toggle: no argument or a true-ish value means on."""
    if not msg.args:
        return True
    v = msg.args[0]
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and math.isfinite(v):
        return v >= 0.5
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "on", "play", "0", "false", "off", "stop"):
        return v.strip().lower() in ("1", "true", "on", "play")
    raise BadArgs(f"{msg.address}: {v!r} is not a flag (0/1)")


def _str(msg: OscMessage, i: int = 0, maxlen: int = 256) -> str:
    if i >= len(msg.args) or not isinstance(msg.args[i], str):
        raise BadArgs(f"{msg.address} needs a string as argument {i + 1}")
    s = msg.args[i]
    if len(s) > maxlen:
        raise BadArgs(f"{msg.address}: string argument longer than {maxlen} characters")
    return s.strip()


def address_template(address: str) -> tuple[str, tuple[int, ...]]:
    """``"/marker/3/name"`` -> (``"/marker/@/name"``, (3,)): numeric segments become ``@``."""
    if not any(c.isdigit() for c in address):
        return address, ()
    parts = address.split("/")
    idx: list[int] = []
    for j, p in enumerate(parts):
        if p.isdigit() and len(p) <= 9:
            idx.append(int(p))
            parts[j] = "@"
    return "/".join(parts), tuple(idx)


# ------------------------------------------------------------------------------ the table
def build_dispatch_table(
    transport: Transport, hooks: DawHooks, *, clock: Callable[[], float] = time.monotonic
) -> dict[str, Handler]:
    """Every address Gravity understands, mapped to its handler (the one place it is defined).

    Parameters
    ----------
    transport : Transport
        Updated by transport and marker messages.
    hooks : DawHooks
        Everything else the handlers may trigger.
    clock : callable
        Monotonic clock, seconds (timestamps the ``/lastmarker`` pairing).
    """
    t = transport

    # -- transport
    def play(msg: OscMessage, _: tuple[int, ...]) -> None:
        if _flag(msg):
            t.play()
        else:
            t.stop()  # REAPER sends /play 0 when it stops or pauses

    def stop(msg: OscMessage, _: tuple[int, ...]) -> None:
        if _flag(msg):
            t.stop()

    def record(msg: OscMessage, _: tuple[int, ...]) -> None:
        if _flag(msg):
            t.play()

    def time_s(msg: OscMessage, _: tuple[int, ...]) -> None:
        t.report_position(_num(msg, 0, -3600.0, MAX_TIME_S))

    def beat_str(msg: OscMessage, _: tuple[int, ...]) -> None:
        t.set_bar_beat_text(_str(msg, 0, 32))

    def tempo(msg: OscMessage, _: tuple[int, ...]) -> None:
        bpm = _num(msg, 0, 1.0, 1000.0)
        if abs(bpm - t.state.bpm) > 1e-3 or not t.state.bpm_from_daw:
            t.set_tempo(bpm)
            hooks.replan()

    # -- markers, regions and sections
    def slot_handlers(base: int) -> tuple[Handler, Handler]:
        """Name and time handlers of REAPER's marker (``base`` 0) or region slots."""

        def name_h(msg: OscMessage, idx: tuple[int, ...]) -> None:
            t.upsert_marker_slot(base + idx[0], name=_str(msg, 0, 128))
            hooks.replan()

        def time_h(msg: OscMessage, idx: tuple[int, ...]) -> None:
            t.upsert_marker_slot(base + idx[0], time_s=_num(msg, 0, -3600.0, MAX_TIME_S))
            hooks.replan()

        return name_h, time_h

    def last_handlers() -> tuple[Handler, Handler]:
        """Name and time handlers of ``/lastmarker`` or ``/lastregion``: REAPER sends the pair in
        one update (name first), so whichever comes second within 0.25 s completes the event.
        Each kind keeps its own pairing state, so a marker and a region passed together do not mix.
        """
        last_time: list[float | None] = [None, -1e9]  # (value, received at)
        last_event_at = [-1e9]

        def name_h(msg: OscMessage, _: tuple[int, ...]) -> None:
            name = _str(msg, 0, 128)
            if not name:
                return  # no marker passed yet, or the playhead is outside every region
            now = clock()
            start = last_time[0] if now - float(last_time[1] or 0) < 0.25 else None
            t.section_event(name, start)
            last_event_at[0] = now
            hooks.wake()

        def time_h(msg: OscMessage, _: tuple[int, ...]) -> None:
            v = _num(msg, 0, -3600.0, MAX_TIME_S)
            now = clock()
            last_time[0], last_time[1] = v, now
            if now - last_event_at[0] < 0.25:
                t.set_event_start(v)

        return name_h, time_h

    marker_name, marker_time = slot_handlers(0)
    region_name, region_time = slot_handlers(REGION_SLOT_BASE)
    lastmarker_name, lastmarker_time = last_handlers()
    lastregion_name, lastregion_time = last_handlers()

    def track_name(msg: OscMessage, idx: tuple[int, ...]) -> None:
        hooks.track_name(idx[0], _str(msg, 0, 128))

    # -- AbletonOSC
    def live_tempo(msg: OscMessage, _: tuple[int, ...]) -> None:
        bpm = _last_num(msg, 1.0, 1000.0)
        if abs(bpm - t.state.bpm) > 1e-3 or not t.state.bpm_from_daw:
            t.set_tempo(bpm)
            hooks.replan()

    def live_playing(msg: OscMessage, _: tuple[int, ...]) -> None:
        t.set_playing(_flag(OscMessage(msg.address, msg.types[-1:], msg.args[-1:])))

    def live_song_time(msg: OscMessage, _: tuple[int, ...]) -> None:
        beats = _last_num(msg, -1e4, 1e7)
        t.report_position(t.state.seconds_at_beats(beats))  # through the tempo map: beats win

    def live_sig_num(msg: OscMessage, _: tuple[int, ...]) -> None:
        t.set_time_signature(beats_per_bar=int(_last_num(msg, 1, 19)))
        hooks.replan()

    def live_sig_den(msg: OscMessage, _: tuple[int, ...]) -> None:
        den = int(_last_num(msg, 1, 16))
        if den not in (1, 2, 4, 8, 16):
            raise BadArgs(f"{msg.address}: beat unit {den} is not 1, 2, 4, 8 or 16")
        t.set_time_signature(beat_unit=den)
        hooks.replan()

    def live_cues(msg: OscMessage, _: tuple[int, ...]) -> None:
        a = msg.args
        if len(a) % 2 or len(a) > 2048:
            raise BadArgs(f"{msg.address}: expected (name, beats) pairs, got {len(a)} values")
        pairs: list[tuple[str, float]] = []
        for x, y in zip(a[0::2], a[1::2], strict=True):  # len(a) is even (checked above)
            name, beats = (x, y) if isinstance(x, str) else (y, x)  # AbletonOSC sends (name, time)
            if (
                not isinstance(name, str)
                or isinstance(beats, (str, bool))
                or not isinstance(beats, (int, float))
                or not math.isfinite(beats)
                or abs(beats) > 1e7
                or len(name) > 128
            ):
                raise BadArgs(f"{msg.address}: bad cue point {x!r}, {y!r}")
            pairs.append((name.strip(), float(beats)))
        t.set_markers_beats(pairs)
        hooks.replan()

    def live_startup(_msg: OscMessage, _: tuple[int, ...]) -> None:
        hooks.resubscribe()

    def live_error(msg: OscMessage, _: tuple[int, ...]) -> None:
        raise BadArgs(f"AbletonOSC reported an error: {str(msg.args)[:200]}")

    # -- Gravity's namespace
    def g_transport(msg: OscMessage, _: tuple[int, ...]) -> None:
        if msg.args and isinstance(msg.args[0], str):
            word = msg.args[0].strip().lower()
            if word not in ("play", "stop", "pause"):
                raise BadArgs(f"{msg.address}: expected 'play' or 'stop', got {word[:20]!r}")
            t.play() if word == "play" else t.stop()
            return
        playing = _flag(msg)
        if len(msg.args) >= 3:
            t.set_tempo(_num(msg, 2, 1.0, 1000.0))
            hooks.replan()
        if len(msg.args) >= 2:
            pos = _num(msg, 1, -3600.0, MAX_TIME_S)
            if playing:
                t.play(pos)
            else:
                t.stop()
                t.report_position(pos)
            hooks.wake()
        else:
            t.set_playing(playing)

    def g_tempo(msg: OscMessage, _: tuple[int, ...]) -> None:
        bpm = _num(msg, 0, 1.0, 1000.0)
        num = int(_num(msg, 1, 1, 19)) if len(msg.args) > 1 else None
        den = int(_num(msg, 2, 1, 16)) if len(msg.args) > 2 else None
        if den is not None and den not in (1, 2, 4, 8, 16):
            raise BadArgs(f"{msg.address}: beat unit {den} is not 1, 2, 4, 8 or 16")
        t.set_tempo(bpm)
        if num or den:
            t.set_time_signature(num, den)
        hooks.replan()

    def g_section(msg: OscMessage, _: tuple[int, ...]) -> None:
        name = _str(msg, 0, 128)
        if not name:
            raise BadArgs(f"{msg.address}: empty section name")
        t.section_event(name, t.position())
        hooks.wake()

    def g_marker(msg: OscMessage, _: tuple[int, ...]) -> None:
        name = _str(msg, 0, 128)
        if not name:
            raise BadArgs(f"{msg.address}: empty marker name")
        t.add_marker(name, _num(msg, 1, -3600.0, MAX_TIME_S))
        hooks.replan()

    def g_markers_clear(_msg: OscMessage, _: tuple[int, ...]) -> None:
        t.clear_markers()
        hooks.replan()

    def g_scene(msg: OscMessage, _: tuple[int, ...]) -> None:
        path = _str(msg, 0, 4096)
        if not path:
            raise BadArgs(f"{msg.address}: empty path")
        section = _str(msg, 1, 128) if len(msg.args) > 1 else None
        hooks.load_scene(path, section or None)

    def g_prompt(msg: OscMessage, _: tuple[int, ...]) -> None:
        hooks.prompt(_str(msg, 0, 2000))

    return {
        # REAPER
        "/play": play,
        "/stop": stop,
        "/pause": stop,
        "/record": record,
        "/time": time_s,
        "/beat/str": beat_str,
        "/tempo/raw": tempo,
        "/marker/@/name": marker_name,
        "/marker/@/time": marker_time,
        "/lastmarker/name": lastmarker_name,
        "/lastmarker/time": lastmarker_time,
        "/region/@/name": region_name,
        "/region/@/time": region_time,
        "/lastregion/name": lastregion_name,
        "/lastregion/time": lastregion_time,
        "/track/@/name": track_name,
        # AbletonOSC
        "/live/song/get/tempo": live_tempo,
        "/live/song/get/is_playing": live_playing,
        "/live/song/get/current_song_time": live_song_time,
        "/live/song/get/beat": live_song_time,
        "/live/song/get/signature_numerator": live_sig_num,
        "/live/song/get/signature_denominator": live_sig_den,
        "/live/song/get/cue_points": live_cues,
        "/live/startup": live_startup,
        "/live/error": live_error,
        # Gravity
        "/gravity/transport": g_transport,
        "/gravity/tempo": g_tempo,
        "/gravity/section": g_section,
        "/gravity/marker": g_marker,
        "/gravity/markers/clear": g_markers_clear,
        "/gravity/scene": g_scene,
        "/gravity/prompt": g_prompt,
    }


class Dispatcher:
    """Routes decoded messages to handlers (python-osc style, with an injected table).

    Parameters
    ----------
    table : mapping
        Address template -> handler (see :func:`build_dispatch_table`).
    ignore_prefixes : sequence of str
        Known but unused namespaces: counted as ``ignored``, not logged.
    echo_prefixes : sequence of str
        Our own output namespaces: counted as ``echo`` and dropped.
    """

    def __init__(
        self,
        table: Mapping[str, Handler],
        *,
        ignore_prefixes: Sequence[str] = REAPER_IGNORED,
        echo_prefixes: Sequence[str] = (),
    ) -> None:
        self.table = dict(table)
        self.ignore_prefixes = tuple(ignore_prefixes)
        self.echo_prefixes = tuple(echo_prefixes)

    def dispatch(self, msg: OscMessage) -> str:
        """Handle one message; returns ``ok``, ``echo``, ``ignored`` or ``unknown``.

        Raises
        ------
        BadArgs
            From the handler, when the arguments do not fit.
        """
        addr = msg.address
        if self.echo_prefixes and addr.startswith(self.echo_prefixes):
            return "echo"
        key, idx = address_template(addr)
        handler = self.table.get(key)
        if handler is None:
            if addr.startswith(self.ignore_prefixes):
                return "ignored"
            return "unknown"
        handler(msg, idx)
        return "ok"


class DawListener:
    """The listener thread: receive, check, decode, dispatch; count everything, raise nothing.

    Parameters
    ----------
    sock : socket.socket
        Bound UDP socket (see :func:`bridge.oscio.bind_udp`).
    dispatcher : Dispatcher
        Where decoded messages go.
    events : RateLimitedLog
        Problem reports (malformed packets, bad arguments, unknown addresses, floods).
    max_per_window : int
        Most datagrams decoded per 0.1 s window; the rest of a flood is read and dropped
        undecoded (counted as ``flooded``) so a flood cannot starve the process.
    realtime_priority : bool
        Run at real-time priority 5 (below the frame thread's 10) so a section event reaches
        the frame thread at once on a busy machine; best effort. During a flood the thread
        drops back to normal scheduling until the input calms down.
    """

    def __init__(
        self,
        sock: socket.socket,
        dispatcher: Dispatcher,
        events: RateLimitedLog,
        *,
        max_per_window: int = 2000,
        realtime_priority: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sock = sock
        self.dispatcher = dispatcher
        self.events = events
        self.max_per_window = max_per_window
        self.realtime_priority = realtime_priority
        self._rt = False
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._window_start = 0.0
        self._window_count = 0
        self.packets = 0
        self.messages = 0
        self.malformed = 0
        self.bad_args = 0
        self.unknown = 0
        self.ignored = 0
        self.echoes = 0
        self.flooded = 0
        self.last_rx_s = 0.0

    def handle_datagram(self, data: bytes, addr: Any = None) -> None:
        """Process one datagram (the listener thread calls this; tests and fuzzers may too)."""
        self.packets += 1
        if not data or data[0] not in (0x2F, 0x23):  # '/' or '#'
            self.malformed += 1
            self.events.report("malformed", "ignored a datagram that is not OSC (from %s, %d bytes)", addr, len(data))
            return
        try:
            msgs = decode_packet(data)
        except OscParseError as exc:
            self.malformed += 1
            self.events.report("malformed", "ignored a malformed OSC packet from %s: %s", addr, exc)
            return
        for msg in msgs:
            self.messages += 1
            try:
                outcome = self.dispatcher.dispatch(msg)
            except BadArgs as exc:
                self.bad_args += 1
                self.events.report("bad_args", "ignored: %s", exc)
                continue
            except Exception as exc:  # a handler bug must not kill the listener
                self.bad_args += 1
                self.events.report("handler", "handler for %.80r failed: %r", msg.address, exc)
                continue
            if outcome == "unknown":
                self.unknown += 1
                self.events.report(
                    "unknown", "ignored unknown OSC address %.80r (%s)", msg.address, msg.types, level=logging.INFO
                )
            elif outcome == "ignored":
                self.ignored += 1
            elif outcome == "echo":
                self.echoes += 1

    def start(self) -> None:
        """Start the listener thread."""
        self._thread = threading.Thread(target=self._run, name="gravity-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread: a zero-length datagram to our own port wakes it at once."""
        self._stop.set()
        try:
            host, port = self.sock.getsockname()[:2]
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as s:
                s.sendto(b"", ("127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host, port))
        except OSError:
            pass  # the 1 s receive timeout ends it anyway
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        """Whether the listener thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _set_rt(self, on: bool) -> None:
        """Real-time scheduling on or off for this thread (best effort, Linux)."""
        from .scheduler import raise_thread_priority

        if on:
            self._rt = raise_thread_priority(rt_priority=5, nice=0) == "SCHED_RR"
            self.realtime_priority = self._rt  # not granted: do not ask again
            return
        try:
            other = os.SCHED_OTHER
            os.sched_setscheduler(threading.get_native_id(), other, os.sched_param(0))
        except (AttributeError, OSError):
            pass
        self._rt = False

    def _run(self) -> None:
        if self.realtime_priority:
            self._set_rt(True)
        self.sock.settimeout(1.0)  # only to notice stop(); idle threads should not wake often
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket, or closed at shutdown
                if self._stop.is_set():
                    break
                self.events.report("socket", "listener socket error: %s", exc)
                continue
            if self._stop.is_set():
                break
            now = self._clock()
            self.last_rx_s = now
            if now - self._window_start > 0.1:
                if self.realtime_priority and self._rt != (self._window_count <= self.max_per_window // 4):
                    self._set_rt(not self._rt)  # demoted while flooded, promoted again when calm
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            if self._window_count > self.max_per_window:
                self.flooded += 1
                self.events.report(
                    "flood", "more than %d datagrams in 0.1 s; dropping the excess undecoded", self.max_per_window
                )
                continue
            try:
                self.handle_datagram(data, addr)
            except Exception as exc:  # belt and braces: nothing from the wire may stop the listener
                self.events.report("listener", "listener error: %r", exc)


class AbletonClient:
    """Asks AbletonOSC (default port 11000) to push transport updates to us.

    AbletonOSC answers on port 11001 of the asking host, so run gravity-live with
    ``--listen 11001`` when following Ableton. :meth:`subscribe` is repeated every few seconds
    by the orchestrator, which also covers a Live that restarts.

    Parameters
    ----------
    sock : socket.socket
        Gravity's listening socket (requests leave from it).
    host, port : str, int
        Where AbletonOSC listens.
    """

    LISTEN: tuple[str, ...] = (
        "tempo",
        "is_playing",
        "current_song_time",
        "signature_numerator",
        "signature_denominator",
    )

    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self.sock = sock
        self.address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4]
        self.sent = 0
        self.errors = 0

    def _send(self, address: str, args: Iterable[Any] = ()) -> None:
        try:
            self.sock.sendto(encode_message(address, list(args)), self.address)
            self.sent += 1
        except OSError:
            self.errors += 1

    def subscribe(self) -> None:
        """Send every ``start_listen`` request and one ``get`` of each value."""
        for prop in self.LISTEN:
            self._send(f"/live/song/start_listen/{prop}")
            self._send(f"/live/song/get/{prop}")
        self._send("/live/song/get/cue_points")

    def poll_cues(self) -> None:
        """Ask for the cue points (AbletonOSC has no listener for them)."""
        self._send("/live/song/get/cue_points")
