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
Ardour's OSC control surface (Ardour 6 on, tested with 7.3; Gravity asks for the feedback itself, see
:class:`ArdourClient` and ``examples/daw/ardour.md``)
    Sources: Ardour's ``libs/surfaces/osc/osc_global_observer.cc`` (``tick``,
    ``send_transport_state_changed``, ``mark_update``, ``clear_observer``) and ``osc.cc``
    (``set_surface``, ``set_surface_port``, ``get_address``, ``set_marker``, ``routes_list``) at
    tag 7.3, and the Ardour manual's "Controlling Ardour with OSC", "Feedback and strip-types
    values", "OSC feedback" and "Querying Ardour with OSC" pages. Gravity sends
    ``/set_surface 0 0 FB 0 0 0 0`` (no strips, feedback bits ``FB`` = :data:`ARDOUR_FEEDBACK`,
    port 0 = "auto": reply to the port we send from) and ``/strip/list``; Ardour then sends, from
    a 100 ms timer, ``/position/samples s`` (the playhead in samples, as a string, only when it
    moved), ``/position/bbt s`` (``BBB|bb|tttt``, 1920 ticks a beat), ``/position/time s``
    (``HH:MM:SS.mmm``; read when samples are not enabled), ``/heartbeat f`` (about 1 Hz), and on
    every transport change ``/loop_toggle f``, ``/transport_play f`` (speed is 1),
    ``/transport_stop f``, ``/toggle_roll``, ``/rewind``, ``/ffwd`` (the same burst on every loop
    wrap: Ardour's ``TransportLooped``), ``/marker s`` (``"A <-> B"`` between two markers,
    ``"A"`` exactly at one, ``"-> A"`` before the first, ``"A <-"`` after the last, ``"No Marks"``;
    the session range counts as markers ``start`` and ``end``), ``/session_name s`` (``" "`` when
    the session closes) and ``/reply`` (``AT|MT|B|MB|FB|V name ins outs mute solo ssid [rec]`` per
    strip, then ``end_route_list rate end_sample monitor``). Ardour reports neither marker times
    nor tempo: :class:`ArdourFeedback` learns the markers (exactly when the playhead stands on one,
    approximately when it crosses one, exactly by walking them with ``/marker n`` while stopped)
    and the tempo and meter from ``/position/bbt`` against the playhead. Loop wraps move the
    playhead to the loop start at once (learned at the start of loop play and at each wrap);
    locates arrive with the next position report. The rest of Ardour's feedback
    (``/master/...``, ``/strip/...``, ...) is ignored quietly (:data:`ARDOUR_IGNORED`).
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
from .transport import MAX_MARKERS, Marker, Transport

__all__ = [
    "BadArgs",
    "DawHooks",
    "Dispatcher",
    "DawListener",
    "AbletonClient",
    "ArdourClient",
    "ArdourFeedback",
    "ARDOUR_FEEDBACK",
    "ARDOUR_IGNORED",
    "parse_ardour_marker_text",
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

ARDOUR_IGNORED: tuple[str, ...] = (
    "/toggle_roll",
    "/ffwd",
    "/rec_enable_toggle",
    "/record_tally",
    "/cancel_all_solos",
    "/toggle_punch",
    "/toggle_click",
    "/monitor",
    "/strip",
    "/select",
    "/group",
    "/jog",
    "/position",
    "/cue",
    "/mixer",
    "/trigger",
    "/session",
)
"""Ardour feedback Gravity does not use (``/master``, ``/click``, ``/rewind`` are in :data:`REAPER_IGNORED`)."""

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
    transport: Transport,
    hooks: DawHooks,
    *,
    clock: Callable[[], float] = time.monotonic,
    ardour: ArdourFeedback | None = None,
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
    ardour : ArdourFeedback, optional
        Where Ardour's feedback is folded in (shared with an :class:`ArdourClient`); by default
        one of its own, so an Ardour whose OSC setup sends feedback here is followed without
        ``--ardour`` (markers are then learned as the playhead meets them, never walked).
    """
    t = transport
    ard = ardour if ardour is not None else ArdourFeedback(transport, hooks, clock=clock)

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
        # Ardour
        "/transport_play": ard.on_play,
        "/transport_stop": ard.on_stop,
        "/loop_toggle": ard.on_loop,
        "/position/samples": ard.on_samples,
        "/position/time": ard.on_time,
        "/position/bbt": ard.on_bbt,
        "/marker": ard.on_marker,
        "/heartbeat": ard.on_heartbeat,
        "/session_name": ard.on_session,
        "/reply": ard.on_reply,
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
        ignore_prefixes: Sequence[str] = REAPER_IGNORED + ARDOUR_IGNORED,
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


# ------------------------------------------------------------------------------ Ardour
ARDOUR_PORT = 3819
"""Ardour's default OSC port (Preferences > Control Surfaces > Open Sound Control)."""

ARDOUR_FEEDBACK = 8 | 16 | 32 | 1024 | 16384
"""``/set_surface`` feedback bits Gravity asks for: 8 heartbeat (about 1 Hz: Ardour is alive),
16 master section (transport state, ``/marker``, session name), 32 bar and beat, 1024 playhead
in samples, 16384 ``/reply`` instead of ``#reply`` (an OSC address starts with ``/``)."""

TICKS_PER_BEAT = 1920
"""Ardour's ticks per beat (``Temporal::ticks_per_beat``): the ``tttt`` of ``/position/bbt``."""

STANDARD_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 352800, 384000)
"""Sample rates a rate inferred from ``/position/time`` against ``/position/samples`` snaps to, Hz."""

SESSION_RANGE_NAMES = ("start", "end")
"""How ``/marker`` text names the session range (Ardour's English strings): no section, unless a
marker walk found a marker of that name."""


def parse_ardour_marker_text(text: str) -> tuple[str | None, str | None, str | None]:
    """(previous, next, at) marker names from Ardour's ``/marker`` feedback text.

    ``"A <-> B"`` -> (A, B, None); ``"A"`` -> (A, None, A): the playhead is exactly on A;
    ``"-> A"`` -> (None, A, None); ``"A <-"`` -> (A, None, None); ``""`` or ``"No Marks"`` ->
    (None, None, None).
    """
    t = text.strip()
    if not t or t == "No Marks":
        return None, None, None
    if " <-> " in t:
        a, b = t.split(" <-> ", 1)
        return a.strip(), b.strip(), None
    if t.startswith("-> "):
        return None, t[3:].strip(), None
    if t.endswith(" <-"):
        return t[:-3].strip(), None, None
    return t, None, t


def _whole_number(msg: OscMessage, limit: float) -> int | None:
    """Ardour's ``/position/samples`` argument: a decimal string (or a number); None for the
    blank Ardour sends when the session closes.
    """
    if not msg.args:
        raise BadArgs(f"{msg.address} needs an argument")
    v = msg.args[0]
    if isinstance(v, str):
        if not v.strip():
            return None
        try:
            n = int(v.strip())
        except ValueError:
            raise BadArgs(f"{msg.address}: {v[:40]!r} is not a whole number") from None
    else:
        n = int(_num(msg, 0))
    if abs(n) > limit:
        raise BadArgs(f"{msg.address}: {n} is out of range")
    return n


def _clock_seconds(msg: OscMessage) -> float | None:
    """``HH:MM:SS.mmm`` (Ardour's ``/position/time``) in seconds; None for a blank."""
    text = _str(msg, 0, 32)
    if not text:
        return None
    try:
        h, m, s = text.split(":")
        secs = int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        raise BadArgs(f"{msg.address}: {text!r} is not HH:MM:SS.mmm") from None
    if not (math.isfinite(secs) and 0.0 <= secs <= MAX_TIME_S):
        raise BadArgs(f"{msg.address}: {text!r} is out of range")
    return secs


@dataclass
class _BarWatch:
    """One bar of ``/position/bbt`` reports while rolling (tempo and meter come from here)."""

    bar: int
    beat0: float  # beats into the bar at the first report in it (from 0)
    pos0: float  # song seconds at that report
    from_downbeat: bool  # the first report in the bar was in its first beat
    max_beat: int
    last_pos: float
    continuous: bool = True  # no report jumped (a locate inside the bar hides beats)


class ArdourFeedback:
    """Ardour's OSC feedback folded into the transport, and the marker table learned from it.

    Ardour reports no marker times and no tempo, so both are learned: a marker exactly when
    ``/marker`` names one with the playhead on it (a locate to a marker, and every step of the
    walk :class:`ArdourClient` makes), approximately (half a report interval, at most 50 ms) when
    the text changes as the playhead crosses one; the tempo from bar|beat|tick reports against
    the playhead inside a bar (median of 5, tick rounding keeps each within 0.1 bpm), the meter
    from the last beat of bars seen whole. Where Ardour's text disagrees with the learned table
    the section follows Ardour at once (an explicit section event) and a walk is wanted.

    The ``on_*`` handlers run in the listener thread and never block; :class:`ArdourClient`
    reads this state from the housekeeping thread and sets ``scanning`` while it walks the
    markers (the playhead reports are then not the song's and are kept from the transport).

    Parameters
    ----------
    transport : Transport
        Updated with play state, playhead, tempo, meter and markers.
    hooks : DawHooks
        ``wake`` on section events and loop wraps, ``replan`` on marker, tempo and meter
        changes, ``track_name`` for strips Ardour lists.
    clock : callable
        Monotonic clock, seconds.
    """

    def __init__(self, transport: Transport, hooks: DawHooks, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.hooks = hooks
        self._clock = clock
        self._lock = threading.Lock()
        self.sample_rate: float | None = None
        self.last_rx_s = -math.inf
        self.position_s: float | None = None
        self.position_rx_s = -math.inf
        self._prev_position: float | None = None  # the report before the latest one
        self._samples_rx_s = -math.inf
        self._time_report: tuple[float, float] | None = None  # /position/time (seconds, received at)
        self.playing = False
        self.stopped_at_s = -math.inf
        self.looping = False
        self.loop_start_s: float | None = None
        self._wrap_rx_s: float | None = None
        self._wrap_reports = 0  # position reports since the last wrap (or loop play start)
        self.wraps = 0
        self.marker_text = ""
        self.marker_text_rx_s = -math.inf
        self.markers: list[tuple[float, str, bool]] = []  # (seconds, name, exact)
        self.scanned_names: frozenset[str] = frozenset()
        self.scanning = False
        self.scan_wanted = False
        self.session = ""
        self.learned = 0
        self._bbt: tuple[int, int, int, float] | None = None  # bar, beat, ticks, received at
        self._bar: _BarWatch | None = None
        self._tempo_votes: list[float] = []
        self._meter_votes: list[int] = []

    # ------------------------------------------------------------------ transport
    def _touch(self) -> float:
        now = self._clock()
        self.last_rx_s = now
        return now

    def on_heartbeat(self, _msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/heartbeat f``: Ardour is alive."""
        self._touch()

    def on_play(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/transport_play f``: 1 while rolling at speed 1; repeated at every loop wrap."""
        now = self._touch()
        if not _flag(msg):
            self._stopped(now)  # stopped, or varispeed: the position reports move the playhead
            return
        if self.playing and self.looping and self.transport.state.playing:
            self._loop_wrap(now)  # Ardour's TransportLooped repeats the transport state
        elif self.looping:  # loop play starts at the loop start (Ardour locates there)
            self.transport.play(self.loop_start_s)
            self._wrap_rx_s, self._wrap_reports = now, 0  # the next reports tell where that is
        else:
            self.transport.play()
        self.playing = True

    def on_stop(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/transport_stop f``: 1 when stopped."""
        now = self._touch()
        if _flag(msg):
            self._stopped(now)

    def _stopped(self, now: float) -> None:
        if self.playing:
            self.stopped_at_s = now
        self.playing = False
        self._bar = None
        self._wrap_rx_s = None  # a stopped playhead says nothing about the loop start
        self.transport.stop()
        if not self.scanning and self.position_s is not None and now - self.position_rx_s < 0.25:
            # Ardour reports the playhead only when it moved: no report after the stop means it
            # stopped where the last one said, so that (not the extrapolation) is where it rests
            self.transport.report_position(self.position_s, now_s=now)

    def on_loop(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/loop_toggle f``: loop play on or off."""
        self._touch()
        self.looping = _flag(msg)
        if not self.looping:
            self._wrap_rx_s = None

    def _loop_wrap(self, now: float) -> None:
        """The playhead went back to the loop start: there at once, where that is known."""
        self.wraps += 1
        self._wrap_rx_s, self._wrap_reports = now, 0
        self._bar = None
        if self.loop_start_s is not None:
            self.transport.seek(self.loop_start_s)
            self.hooks.wake()

    # ------------------------------------------------------------------ the playhead
    def on_samples(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/position/samples s``: the playhead in samples (exact; seconds once the rate is known)."""
        now = self._touch()
        n = _whole_number(msg, 2.0**53)
        if n is None:
            return
        self._samples_rx_s = now
        tr = self._time_report
        if self.sample_rate is None and tr is not None and now - tr[1] < 0.05 and tr[0] >= 1.0:
            rate = min(STANDARD_RATES, key=lambda r: abs(r - n / tr[0]))
            if abs(rate - n / tr[0]) <= 0.002 * rate:  # the clock text has 1 ms steps: 0.1 % at 1 s
                self.sample_rate = float(rate)
        if self.sample_rate is not None:
            self._position(n / self.sample_rate, now)

    def on_time(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/position/time s``: the playhead as ``HH:MM:SS.mmm`` (used while samples are not reported)."""
        now = self._touch()
        secs = _clock_seconds(msg)
        if secs is None:
            return
        self._time_report = (secs, now)
        if now - self._samples_rx_s > 0.5:
            self._position(secs, now)

    def on_bbt(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/position/bbt s``: ``BBB|bb|tttt`` at the playhead (status line; tempo and meter)."""
        now = self._touch()
        text = _str(msg, 0, 32)
        if not text:
            return
        try:
            bar, beat, ticks = (int(p) for p in text.split("|"))
        except ValueError:
            raise BadArgs(f"{msg.address}: {text!r} is not BBB|bb|tttt") from None
        if not (abs(bar) <= 10**7 and 1 <= beat <= 64 and 0 <= ticks < TICKS_PER_BEAT):
            raise BadArgs(f"{msg.address}: {text!r} is out of range")
        self.transport.set_bar_beat_text(text)
        self._bbt = (bar, beat, ticks, now)

    def _position(self, pos: float, now: float) -> None:
        if self.scanning:  # the client is walking the markers: not the song's playhead
            self.position_s, self.position_rx_s = pos, now
            return
        wrap = self._wrap_rx_s
        if wrap is not None and self.looping and self.playing and 0.0 <= now - wrap < 0.35:
            # each report soon after a wrap says where the loop starts; a report is the start of an
            # audio block (early by up to a block), so the first one sets it and the latest of the
            # next ones (within 50 ms of it) refines it
            est = pos - (now - wrap)
            old = self.loop_start_s
            first = self._wrap_reports == 0 or old is None
            self.loop_start_s = est if first or old is None or abs(est - old) > 0.05 else max(old, est)
            self._wrap_reports += 1
        else:
            self._wrap_rx_s = None
        self._prev_position = self.position_s
        self.position_s, self.position_rx_s = pos, now
        self.transport.report_position(pos, now_s=now)
        bbt = self._bbt
        if self.playing and bbt is not None and now - bbt[3] < 0.05:  # sent in the same tick
            self._tempo_sample(bbt[0], bbt[1], bbt[2], pos)

    # ------------------------------------------------------------------ tempo and meter
    def _tempo_sample(self, bar: int, beat: int, ticks: int, pos: float) -> None:
        b = beat - 1 + ticks / TICKS_PER_BEAT
        w = self._bar
        if w is not None and bar == w.bar and pos > w.last_pos:
            w.continuous = w.continuous and pos - w.last_pos < 0.35
            w.max_beat, w.last_pos = max(w.max_beat, beat), pos
            if pos - w.pos0 >= 0.45 and b > w.beat0:
                # beats against seconds inside one bar: exact at a constant tempo, locates included
                self._tempo_vote(60.0 * (b - w.beat0) / (pos - w.pos0))
            return
        if w is not None and bar == w.bar + 1 and w.from_downbeat and w.continuous and 0 < pos - w.last_pos < 0.35:
            self._meter_vote(w.max_beat)  # a bar seen whole: its last beat is the meter
        self._bar = _BarWatch(bar, b, pos, beat == 1, beat, pos)

    def _tempo_vote(self, bpm: float) -> None:
        votes = self._tempo_votes
        votes.append(bpm)
        del votes[:-5]
        if len(votes) < 5 or not 1.0 <= bpm <= 1000.0:
            return
        est = round(sorted(votes)[2], 1)
        st = self.transport.state
        # 0.15 bpm of hysteresis: one estimate is within 0.1 bpm, so jitter never re-plans
        if not st.bpm_from_daw or abs(est - st.bpm) >= 0.15:
            self.transport.set_tempo(est)
            self.hooks.replan()

    def _meter_vote(self, beats: int) -> None:
        votes = self._meter_votes
        votes.append(beats)
        del votes[:-2]
        st = self.transport.state
        if len(votes) == 2 and votes[0] == votes[1] and 1 <= beats <= 19:
            if not st.meter_from_daw or beats != st.beats_per_bar:
                self.transport.set_time_signature(beats_per_bar=beats)
                self.hooks.replan()

    # ------------------------------------------------------------------ markers and sections
    def on_marker(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/marker s``: where the playhead is among the markers (see :func:`parse_ardour_marker_text`)."""
        now = self._touch()
        text = _str(msg, 0, 300)
        old, self.marker_text = self.marker_text, text
        self.marker_text_rx_s = now
        if self.scanning or not text or text == old:  # blank: the session is closing
            return
        if text == "No Marks":
            if self.markers:
                self._replace_markers([], frozenset())
            return
        pos = self.position_s
        if pos is None:
            return
        prev, _nxt, at = parse_ardour_marker_text(text)
        moved = now - self.position_rx_s < 0.05  # sent with a position report (the same timer tick)
        if at is None and not moved and not self.playing and old:
            # the text changed under a still playhead, not onto a marker (that is learned below):
            # markers around it were moved, removed or renamed in Ardour
            self.scan_wanted = True
        if at is not None:
            self._learn(at, pos, exact=True)
        elif prev is not None and self.playing and moved and self._prev_position is not None:
            p0 = self._prev_position
            if parse_ardour_marker_text(old)[1] == prev and 0.0 < pos - p0 < 0.35:
                self._learn(prev, 0.5 * (p0 + pos), exact=False, window=(p0, pos))  # crossed between two reports
        self._check(prev, pos)

    def _is_marker(self, name: str) -> bool:
        return name.casefold() not in SESSION_RANGE_NAMES or name in self.scanned_names

    def _learn(self, name: str, t: float, *, exact: bool, window: tuple[float, float] = (0.0, 0.0)) -> None:
        if not self._is_marker(name):
            return
        with self._lock:
            ms = self.markers
            if exact:
                same = [m for m in ms if m[1] == name and abs(m[0] - t) <= 0.5]
                if (t, name, True) in same:
                    return  # known exactly
                kept = [m for m in ms if m not in same]
            else:
                if any(n == name and window[0] - 0.25 <= mt <= window[1] + 0.25 for mt, n, _ in ms):
                    return  # known (the table switched the section on time)
                kept = list(ms)
            self.markers = sorted([*kept, (float(t), name, exact)])[:MAX_MARKERS]
            self.learned += 1
        log.info("Ardour marker %r at %.3f s (%s)", name, t, "exact" if exact else "crossed, +-50 ms")
        self._publish()

    def _check(self, name: str | None, pos: float) -> None:
        """Ardour's section (``name``, None before the first marker) against the learned table."""
        if name is not None and not self._is_marker(name):
            name = None
        st = self.transport.state
        if any(abs(mt - pos) < 0.15 for mt in st.marker_times):
            return  # at a boundary the table may hold an estimate: the next report tells
        i = st.marker_index(pos)
        if (st.markers[i].name if i >= 0 else None) == name:
            return
        if name is not None:
            self.transport.section_event(name)  # Ardour's word wins until the next marker
            self.hooks.wake()
        self.scan_wanted = True

    def _replace_markers(self, found: Iterable[tuple[float, str]], names: frozenset[str]) -> None:
        with self._lock:
            self.markers = sorted((float(t), n, True) for t, n in found)[:MAX_MARKERS]
            self.scanned_names = names
        self._publish()

    def finish_scan(self, found: Sequence[tuple[float, str]]) -> None:
        """The client walked every marker: ``found`` (seconds, name) replaces the learned table."""
        self._replace_markers(found, frozenset(n for _, n in found))
        self.scan_wanted = False
        self.scanning = False

    def _publish(self) -> None:
        with self._lock:
            ms = [Marker(t, n) for t, n, _ in self.markers]
        self.transport.set_markers(ms)
        self.hooks.replan()

    # ------------------------------------------------------------------ session and strips
    def on_session(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/session_name s``: another session (or ``" "``: closed) forgets what was learned."""
        self._touch()
        name = _str(msg, 0, 256)
        old, self.session = self.session, name
        if not old or name == old:
            return
        self.sample_rate = None
        self.loop_start_s = None
        self._bar = None
        self._tempo_votes.clear()
        self._meter_votes.clear()
        self._replace_markers([], frozenset())
        self.scan_wanted = True

    def on_reply(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        """``/reply``: Ardour's answer to ``/strip/list`` (strip names, then the sample rate)."""
        self._touch()
        kind = _str(msg, 0, 32)
        if kind == "end_route_list":
            self.sample_rate = _num(msg, 1, 1000.0, 1e6)
        elif kind in ("AT", "MT", "B", "MB", "FB", "V") and len(msg.args) >= 7:
            self.hooks.track_name(int(_num(msg, 6, 1, 1e6)), _str(msg, 1, 128))


@dataclass
class _Scan:
    home_s: float  # where the playhead goes back to
    n: int  # the marker asked for (from 1)
    sent_s: float
    found: list[tuple[float, str]]


class ArdourClient:
    """Asks Ardour's OSC surface for feedback, asks again while it is silent, and walks its markers.

    Ardour answers the port a request comes from (``/set_surface`` port 0, "auto"), so requests
    leave from Gravity's listening socket. Ardour reports no marker times, so once connected,
    when it is stopped and idle, the client walks the markers with ``/marker n`` (each a locate
    that stops: about 0.2 s a marker), reads each one's exact position, and puts the playhead
    back with ``/locate``; again after Ardour's markers change (a new session, the marker text
    changing under a still playhead, or Ardour's text disagreeing with the table). Starting to
    play during a walk ends it where it is. ``scan=False`` never moves Ardour's playhead: the
    markers are then learned as the playhead meets them.

    Parameters
    ----------
    sock : socket.socket
        Gravity's listening socket (requests leave from it).
    host, port : str, int
        Where Ardour's OSC surface listens (default port :data:`ARDOUR_PORT`).
    feedback : ArdourFeedback
        The state the listener's handlers fold Ardour's feedback into.
    scan : bool
        Walk the markers (see above).
    clock : callable
        Monotonic clock, seconds.
    """

    SILENCE_S = 3.0
    """No feedback for this long (the heartbeat comes about once a second): ask again."""
    IDLE_S = 0.5
    """A walk waits for the playhead to have been still (and stopped) this long."""
    STEP_S = 0.35
    """A marker the playhead is already on is taken after this long (Ardour reports no change)."""
    END_S = 0.6
    """No marker after this long: the walk is over."""

    def __init__(
        self,
        sock: socket.socket,
        host: str,
        port: int,
        feedback: ArdourFeedback,
        *,
        scan: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sock = sock
        self.address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4]
        self.feedback = feedback
        self.scan = scan
        self._clock = clock
        feedback.scan_wanted = scan
        self._asked_s = -math.inf
        self._rate_asked_s = -math.inf
        self._scan: _Scan | None = None
        self.sent = 0
        self.errors = 0
        self.subscriptions = 0
        self.scans = 0

    def _send(self, address: str, args: Sequence[Any] = (), types: str | None = None) -> None:
        try:
            self.sock.sendto(encode_message(address, list(args), types), self.address)
            self.sent += 1
        except OSError:
            self.errors += 1

    def subscribe(self) -> None:
        """``/set_surface`` (no strips, :data:`ARDOUR_FEEDBACK`, reply port auto) and ``/strip/list``."""
        self._send("/set_surface", [0, 0, ARDOUR_FEEDBACK, 0, 0, 0, 0], "iiiiiii")
        self._send("/strip/list")
        self.subscriptions += 1

    def poll(self, now: float | None = None) -> None:
        """Called every ~0.1 s (the housekeeping thread): subscribe while silent, walk the markers."""
        now = self._clock() if now is None else now
        fb = self.feedback
        if now - fb.last_rx_s > self.SILENCE_S:
            if now - self._asked_s > self.SILENCE_S:
                self._asked_s = now
                self.subscribe()
            if self._scan is not None:
                self._scan, fb.scanning, fb.scan_wanted = None, False, self.scan
            return
        if fb.sample_rate is None and now - max(self._rate_asked_s, self._asked_s) > 2.0:
            self._rate_asked_s = now
            self._send("/strip/list")
        if self.scan:
            self._scan_step(now)

    def _scan_step(self, now: float) -> None:
        fb = self.feedback
        s = self._scan
        if s is None:
            if (
                fb.scan_wanted
                and not fb.playing
                and fb.sample_rate
                and fb.position_s is not None
                and now - max(fb.stopped_at_s, fb.position_rx_s) >= self.IDLE_S
            ):
                self._scan = _Scan(fb.position_s, 1, now, [])
                fb.scanning, fb.scan_wanted = True, False
                self._send("/marker", [1], "i")
            return
        if fb.playing:  # the user took over: leave the playhead where it is, walk another time
            self._scan, fb.scanning, fb.scan_wanted = None, False, True
            log.info("Ardour started playing during the marker walk; it goes on at the next stop")
            return
        at = parse_ardour_marker_text(fb.marker_text)[2]
        moved = fb.position_rx_s > s.sent_s
        pos = fb.position_s
        if (
            at is not None
            and pos is not None
            and ((moved and now - fb.position_rx_s >= 0.05) or now - s.sent_s >= self.STEP_S)
        ):
            if not s.found or s.found[-1] != (pos, at):
                s.found.append((pos, at))
                s.n += 1
                s.sent_s = now
                self._send("/marker", [s.n], "i")
                return
        elif now - s.sent_s < self.END_S:
            return
        rate = fb.sample_rate or 48000.0
        self._send("/locate", [int(round(s.home_s * rate)), 0], "ii")
        fb.finish_scan(s.found)
        self._scan = None
        self.scans += 1
        log.info("Ardour markers: %s", ", ".join(f"{n} {t:.3f} s" for t, n in sorted(s.found)) or "none")

    def stats(self) -> dict[str, Any]:
        """Counters and what was learned, for the bridge's report."""
        fb = self.feedback
        return {
            "subscriptions": self.subscriptions,
            "requests": self.sent,
            "send_errors": self.errors,
            "marker_walks": self.scans,
            "markers": [(round(t, 6), n, exact) for t, n, exact in list(fb.markers)],
            "learned": fb.learned,
            "sample_rate": fb.sample_rate,
            "loop_wraps": fb.wraps,
            "loop_start_s": fb.loop_start_s,
        }
