"""The motion scheduler: one thread that emits a frame to every target at a fixed rate.

Each tick reads the transport (lock-free), finds the current section, takes that section's
prepared scene from the latest scene book (one reference read), evaluates every object at the
normalised section time through :mod:`gravity.motion` and hands the frame to the targets and
to frame listeners. It never waits on planning, disk or logging: problems go to a
:class:`~bridge.ratelog.RateLimitedLog`, scenes arrive prepared.

Timing: ticks are scheduled on absolute deadlines (``start + k / rate``) so they do not drift;
a tick more than one period late is dropped rather than sent in a burst. The thread also wakes
early, out of cadence, to put the first frame of a new section on the wire at once: when a
section event arrives (:meth:`FrameScheduler.wake`) and when the extrapolated playhead reaches
the next marker.

Section time: ``t = (playhead - section start) / section length``, clamped to 0..1, where the
length is the scene's own ``timing`` (bars x beats per bar x 60 / bpm), so the motion on the
wire matches what the renderer plays from the same scene.

Scene replacements within a section (the LLM's scene replacing the planner's, a re-plan after
``/gravity/prompt``) are crossfaded over ``crossfade_beats``: directions along the great circle,
distance, gain and width linearly. A section change switches at once (it is the musical cut).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from .frame import Frame
from .ratelog import RateLimitedLog
from .scenes import PreparedScene, SceneBook
from .targets import Target
from .transport import SectionInfo, SectionTracker, Transport, TransportState

__all__ = ["SchedulerConfig", "SchedulerStats", "FrameScheduler", "blend_aed", "raise_thread_priority"]

FrameListener = Callable[[Frame], None]


@dataclass(frozen=True)
class SchedulerConfig:
    """Frame thread settings.

    Attributes
    ----------
    rate_hz : float
        Frames per second, 1..200.
    refresh_s : float
        Every object is re-sent in full at least this often, seconds (spread over frames).
    crossfade_beats : float
        Length of a scene-replacement crossfade, beats (0 = switch at once).
    history : int
        Frames of timing history kept for statistics (a bounded ring).
    realtime_priority : bool
        Ask the OS to schedule the frame thread ahead of ordinary work (Linux ``SCHED_RR``
        priority 10, else a lower nice value); best effort, silently skipped without the
        privilege (see :func:`raise_thread_priority`).
    """

    rate_hz: float = 50.0
    refresh_s: float = 1.0
    crossfade_beats: float = 2.0
    history: int = 1 << 15
    realtime_priority: bool = True

    def __post_init__(self) -> None:
        """Check the rate (1..200 Hz) and the refresh period (> 0 s)."""
        if not 1.0 <= self.rate_hz <= 200.0:
            raise ValueError(f"rate must be 1..200 Hz, got {self.rate_hz}")
        if self.refresh_s <= 0:
            raise ValueError(f"refresh_s must be positive, got {self.refresh_s}")


@dataclass(frozen=True)
class SchedulerStats:
    """Counters and timing percentiles (milliseconds) since start.

    ``lateness``: how late on-cadence frames started versus their deadline; ``compute``: time
    to evaluate, encode and send one frame; ``period_error_ppm``: mean frame interval versus
    the nominal one (the scheduler's clock drift).
    """

    frames: int
    messages: int
    late_skipped: int
    early_frames: int
    errors: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    compute_p50_ms: float
    compute_p99_ms: float
    section_changes: int
    crossfades: int
    last_switch_ms: float | None
    elapsed_s: float
    cadence_frames: int
    period_error_ppm: float


def raise_thread_priority(rt_priority: int = 10, nice: int = -10) -> str:
    """Raise the calling thread's scheduling priority, best effort; returns what was granted.

    Tries ``SCHED_RR`` at ``rt_priority`` (Linux, needs CAP_SYS_NICE or an rtprio limit, as
    audio users usually have), then a lower nice value; returns ``"SCHED_RR"``, ``"nice"`` or
    ``"normal"``. A real-time thread that sleeps between frames costs others nothing but
    wakes on time when the machine is busy.
    """
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(rt_priority))
        return "SCHED_RR"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)  # per thread on Linux
        return "nice"
    except (AttributeError, OSError):
        return "normal"


def _unit(aed: np.ndarray) -> np.ndarray:
    a, e = np.radians(aed[:, 0]), np.radians(aed[:, 1])
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)


def blend_aed(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Blend positions ``a`` -> ``b`` by ``w`` in 0..1: direction along the great circle
    (normalised linear interpolation of unit vectors), distance linearly.

    Parameters
    ----------
    a, b : np.ndarray [shape=(N, 3)]
        (azimuth deg +left, elevation deg, distance m).
    w : float
        0 gives ``a``, 1 gives ``b``.
    """
    if w <= 0.0:
        return a.copy()
    if w >= 1.0:
        return b.copy()
    ua, ub = _unit(a), _unit(b)
    u = (1.0 - w) * ua + w * ub
    norm = np.linalg.norm(u, axis=1)
    flat = norm < 1e-6  # opposite directions: go over the top instead of through the centre
    if np.any(flat):
        lift = np.sin(np.pi * w)
        u[flat] = (1.0 - w) * ua[flat] + w * ub[flat] + np.array([0.0, 0.0, 1.0]) * lift
        norm = np.linalg.norm(u, axis=1)
    u /= norm[:, None]
    az = np.degrees(np.arctan2(u[:, 1], u[:, 0]))
    el = np.degrees(np.arcsin(np.clip(u[:, 2], -1.0, 1.0)))
    d = (1.0 - w) * a[:, 2] + w * b[:, 2]
    return np.stack([az, el, d], axis=-1)


def _fit(a: np.ndarray, n: int, fill: float = 0.0) -> np.ndarray:
    """Pad (or cut) the first axis to ``n``."""
    if len(a) == n:
        return a
    if len(a) > n:
        return a[:n]
    pad = np.full((n - len(a),) + a.shape[1:], fill, dtype=a.dtype)
    return np.concatenate([a, pad])


class _Crossfade:
    __slots__ = ("old", "start_s", "length_s")

    def __init__(self, old: PreparedScene, start_s: float, length_s: float) -> None:
        self.old, self.start_s, self.length_s = old, start_s, length_s


class FrameScheduler:
    """The frame thread.

    Early (out-of-cadence) frames are spaced at least :attr:`MIN_EARLY_GAP_S` apart.

    Parameters
    ----------
    config : SchedulerConfig
        Rate, refresh, crossfade.
    transport : Transport
        Read each tick (lock-free).
    book : callable
        Returns the latest :class:`SceneBook` (a reference read).
    targets : sequence of Target
        Output encoders/senders; a target that fails is counted and skipped, never fatal.
    events : RateLimitedLog
        Where problems are reported.
    clock : callable
        Monotonic clock, seconds.
    """

    MIN_EARLY_GAP_S = 0.002
    """Shortest interval between two out-of-cadence frames, seconds."""
    MAX_EARLY_PER_S = 20
    """Out-of-cadence frames allowed per second; beyond, events wait for the next regular frame
    (a DAW sends a few section events a second at most; a flood must not multiply the frames)."""
    AHEAD_TOLERANCE_S = 0.001
    """A frame computed ahead is still sent if the playhead moved less than this, seconds."""

    def __init__(
        self,
        config: SchedulerConfig,
        *,
        transport: Transport,
        book: Callable[[], SceneBook],
        targets: Sequence[Target],
        events: RateLimitedLog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.transport = transport
        self._book = book
        self.targets = list(targets)
        self.events = events
        self._clock = clock
        self._listeners: list[FrameListener] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tracker = SectionTracker()
        self._scene: PreparedScene | None = None
        self._xfade: _Crossfade | None = None
        self.section: SectionInfo | None = None
        self.last_frame: Frame | None = None
        n = config.history
        self._lateness = np.zeros(n)
        self._compute = np.zeros(n)
        self.frames = 0
        self._compute_n = 0
        self._carry_new_section = False
        self._ahead_inputs: tuple[TransportState | None, SceneBook | None] = (None, None)
        self._last_emit_s = -1e9
        self._early_window_s = -1e9
        self._early_count = 0
        self._lat_n = 0
        self._first_tick_s: float | None = None
        self._last_tick_s = 0.0
        self.messages = 0
        self.late_skipped = 0
        self.early_frames = 0
        self.errors = 0
        self.section_changes = 0
        self.crossfades = 0
        self.wake_time_s: float | None = None
        self.priority = "normal"
        """Scheduling the frame thread got (see :func:`raise_thread_priority`)."""
        self.last_switch_ms: float | None = None
        self._t0 = clock()

    # ------------------------------------------------------------------ control
    def add_listener(self, listener: FrameListener) -> None:
        """Call ``listener(frame)`` from the frame thread after each frame is sent.

        Listeners must not block (hand the frame to your own thread or bounded queue); an
        exception is counted and reported, and the listener stays registered.
        """
        self._listeners = [*self._listeners, listener]  # a new list: the frame thread may be iterating the old one

    def remove_listener(self, listener: FrameListener) -> None:
        """Stop calling ``listener`` (ignored when it is not registered); safe while frames run."""
        self._listeners = [x for x in self._listeners if x != listener]  # (==: bound methods are made anew)

    def wake(self) -> None:
        """Emit a frame now, out of cadence (a section event or a new scene arrived)."""
        if self.wake_time_s is None:
            self.wake_time_s = self._clock()
        self._wake.set()

    def start(self) -> None:
        """Start the frame thread."""
        self._t0 = self._clock()
        self._thread = threading.Thread(target=self._run, name="gravity-frames", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop after the current frame; nothing more is sent (no parking, no muting)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        """Whether the frame thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ one frame
    def compute_frame(self, now_s: float) -> Frame:
        """Build the frame for monotonic time ``now_s`` (also usable without the thread)."""
        st = self.transport.state
        pos = st.position(now_s)
        info = self.tracker.update(st, pos)
        self.section = info
        book = self._book()
        scene = book.resolve(info.name)
        n = len(book.map)
        if info.changed:
            self._xfade = None
            if self._scene is not None:
                self.section_changes += 1
        elif (
            self._scene is not None
            and scene is not self._scene
            and scene.crossfade_in  # (a hand edit goes out at once)
            and self.config.crossfade_beats > 0
        ):
            length = self.config.crossfade_beats * 60.0 / max(1.0, st.bpm)
            self._xfade = _Crossfade(self._scene, now_s, length)
            self.crossfades += 1
        self._scene = scene
        t = (pos - info.start_s) / scene.section_s if scene.section_s > 0 else 0.0
        aed, gain, width, active = scene.evaluate(t)
        aed, gain, width, active = _fit(aed, n), _fit(gain, n, -60.0), _fit(width, n), _fit(active, n, False)
        xf = self._xfade
        if xf is not None:
            w = (now_s - xf.start_s) / xf.length_s if xf.length_s > 0 else 1.0
            if w >= 1.0:
                self._xfade = None
            else:
                t_old = (pos - info.start_s) / xf.old.section_s if xf.old.section_s > 0 else 0.0
                o_aed, o_gain, o_width, o_active = xf.old.evaluate(t_old)
                o_aed, o_gain = _fit(o_aed, n), _fit(o_gain, n, -60.0)
                o_width, o_active = _fit(o_width, n), _fit(o_active, n, False)
                both = active & o_active
                aed = np.where(both[:, None], blend_aed(o_aed, aed, w), np.where(active[:, None], aed, o_aed))
                g_new = np.where(active, gain, -60.0)
                g_old = np.where(o_active, o_gain, -60.0)
                gain = (1.0 - w) * g_old + w * g_new
                width = (1.0 - w) * np.where(o_active, o_width, width) + w * np.where(active, width, o_width)
                active = active | o_active
        if not np.all(np.isfinite(aed)) or not np.all(np.isfinite(gain)):
            self.events.report("nan", "non-finite position or gain in section %r; sending 0 instead", info.name)
            aed = np.nan_to_num(aed, nan=0.0, posinf=0.0, neginf=0.0)
            gain = np.nan_to_num(gain, nan=-60.0, posinf=-60.0, neginf=-60.0)
        return Frame(
            seq=self.frames,
            time_s=now_s,
            playhead_s=pos,
            playing=st.playing,
            section=info.name,
            section_t=min(1.0, max(0.0, t)),
            scene_source=scene.source,
            new_section=info.changed,
            names=book.map.ids,
            aed=aed,
            gain_db=gain,
            width=width,
            active=active,
            section_start_s=info.start_s,
        )

    def _refresh_mask(self, n: int) -> np.ndarray:
        per = max(1, int(round(self.config.refresh_s * self.config.rate_hz)))
        return (np.arange(n) % per) == (self.frames % per)

    def _compute_safe(self, now_s: float) -> Frame | None:
        t0 = self._clock()
        try:
            frame = self.compute_frame(now_s)
        except Exception as exc:  # a broken scene must not stop the stream
            self.errors += 1
            self.events.report("frame", "frame computation failed: %r", exc)
            return None
        finally:
            self._compute[self._compute_n % len(self._compute)] = self._clock() - t0
            self._compute_n += 1
        if self._carry_new_section and not frame.new_section:
            frame = replace(frame, new_section=True)
        self._carry_new_section = False
        return frame

    def send(self, frame: Frame) -> int:
        """Hand ``frame`` to every target and listener; never raises. Returns messages sent."""
        refresh = self._refresh_mask(frame.size)
        sent = 0
        for target in self.targets:
            try:
                sent += target.send_frame(frame, refresh)
            except Exception as exc:
                self.errors += 1
                self.events.report("target", "target %s failed: %r", target.spec, exc)
        for listener in self._listeners:
            try:
                listener(frame)
            except Exception as exc:
                self.errors += 1
                self.events.report("listener", "frame listener failed: %r", exc)
        if frame.new_section and self.wake_time_s is not None:  # a section event: wake -> on the wire
            self.last_switch_ms = (self._clock() - self.wake_time_s) * 1e3
        self.wake_time_s = None
        self.messages += sent
        self.last_frame = frame
        self.frames += 1
        return sent

    def emit(self, now_s: float) -> Frame | None:
        """Compute and send one frame for monotonic time ``now_s``; never raises."""
        frame = self._compute_safe(now_s)
        if frame is not None:
            self.send(frame)
        return frame

    # ------------------------------------------------------------------ the thread
    def _still_valid(self, frame: Frame, st: TransportState, book: SceneBook) -> bool:
        """May a frame computed ahead for its deadline still go out? Yes unless the scene book,
        a section event, the markers or the play state changed, or the playhead moved by more
        than :attr:`AHEAD_TOLERANCE_S` (a DAW correction is slewed in: usually microseconds).
        """
        old_st, old_book = self._ahead_inputs
        if book is not old_book:
            return False
        if st is old_st:
            return True
        if old_st is None:  # (unreachable: the book check above returns first)
            return False
        return (
            st.event == old_st.event
            and st.markers_version == old_st.markers_version
            and st.playing == old_st.playing
            and abs(st.position(frame.time_s) - frame.playhead_s) <= self.AHEAD_TOLERANCE_S
        )

    def _run(self) -> None:
        """Frames on absolute deadlines. After each on-cadence frame the next one is computed
        ahead for its deadline, so at the deadline it only has to be sent: the time to evaluate
        the scene no longer adds to the jitter on the wire. An early frame (section event, new
        scene, marker crossing) discards the frame computed ahead.
        """
        if self.config.realtime_priority:
            self.priority = raise_thread_priority()
        period = 1.0 / self.config.rate_hz
        deadline = self._clock()
        ahead: Frame | None = None
        while not self._stop.is_set():
            now = self._clock()
            wait = deadline - now
            crossing = self._crossing_wait(now)
            if crossing is not None and crossing < wait:
                wait = crossing
            if wait > 0:
                early = self._wake.wait(wait)
                if early:
                    self._wake.clear()
                    # out of cadence (the next deadline stands), but at most one per MIN_EARLY_GAP_S so
                    # a flood of section events cannot become a flood of frames
                    hold = self._last_emit_s + self.MIN_EARLY_GAP_S - self._clock()
                    if hold > 0 and self._stop.wait(hold):
                        break
                    if self._stop.is_set():
                        break
                now = self._clock()
                if early and not self._early_budget(now):
                    continue  # over budget: the next regular frame shows the change
                if early or now < deadline - 1e-4:  # an event, or a marker crossing
                    if ahead is not None:
                        self._carry_new_section |= ahead.new_section
                        ahead = None
                    self.early_frames += 1
                    self._last_emit_s = now
                    self.emit(now)
                    continue
            if ahead is not None and not self._still_valid(ahead, self.transport.state, self._book()):
                self._carry_new_section |= ahead.new_section
                ahead = None
            frame = ahead if ahead is not None else self._compute_safe(deadline)
            ahead = None
            now = self._clock()
            self._last_emit_s = now
            if frame is not None:
                self.send(frame)
            self._lateness[self._lat_n % len(self._lateness)] = max(0.0, now - deadline)
            self._lat_n += 1
            if self._first_tick_s is None:
                self._first_tick_s = now
            self._last_tick_s = now
            deadline += period
            behind = self._clock() - deadline
            if behind > period:
                skipped = int(behind // period)
                self.late_skipped += skipped
                deadline += skipped * period
                self.events.report("late", "frame thread %.1f ms behind; skipped %d frame(s)", behind * 1e3, skipped)
            # compute the next frame now, unless a marker crossing comes first (then it is computed
            # when the crossing wakes us, so the section tracker never runs ahead of a crossing)
            st = self.transport.state
            cross = self._crossing_wait(self._clock())
            if cross is None or self._clock() + cross > deadline:
                self._ahead_inputs = (st, self._book())
                ahead = self._compute_safe(deadline)

    def _early_budget(self, now_s: float) -> bool:
        """True while fewer than :attr:`MAX_EARLY_PER_S` early frames went out this second."""
        if now_s - self._early_window_s >= 1.0:
            self._early_window_s, self._early_count = now_s, 0
        self._early_count += 1
        return self._early_count <= self.MAX_EARLY_PER_S

    def _crossing_wait(self, now_s: float) -> float | None:
        st = self.transport.state
        if not st.playing or not st.markers:
            return None
        pos = st.position(now_s)
        nxt = self.tracker.next_crossing_s(st, pos)
        if nxt is None:
            return None
        return max(0.0, nxt - pos) + 2e-4  # just past the marker

    # ------------------------------------------------------------------ statistics
    def stats(self) -> SchedulerStats:
        """Counters and percentiles over the last ``history`` frames."""
        n = min(self._lat_n, len(self._lateness))
        lat = self._lateness[:n] * 1e3 if n else np.zeros(1)
        m = min(self._compute_n, len(self._compute))
        comp = self._compute[:m] * 1e3 if m else np.zeros(1)
        return SchedulerStats(
            frames=self.frames,
            messages=self.messages,
            late_skipped=self.late_skipped,
            early_frames=self.early_frames,
            errors=self.errors,
            lateness_p50_ms=float(np.percentile(lat, 50)),
            lateness_p99_ms=float(np.percentile(lat, 99)),
            lateness_max_ms=float(lat.max()),
            compute_p50_ms=float(np.percentile(comp, 50)),
            compute_p99_ms=float(np.percentile(comp, 99)),
            section_changes=self.section_changes,
            crossfades=self.crossfades,
            last_switch_ms=self.last_switch_ms,
            elapsed_s=self._clock() - self._t0,
            cadence_frames=self._lat_n,
            period_error_ppm=self._period_error_ppm(),
        )

    def _period_error_ppm(self) -> float:
        """Mean on-cadence interval vs the nominal period, parts per million (0 = no drift)."""
        if self._first_tick_s is None or self._lat_n < 2:
            return 0.0
        ticks = self._lat_n - 1 + self.late_skipped
        mean = (self._last_tick_s - self._first_tick_s) / ticks
        return (mean * self.config.rate_hz - 1.0) * 1e6
