"""The transport model: where the song is, between and across DAW updates.

The DAW reports its playhead a few dozen times a second at best (REAPER ``/time``, AbletonOSC
``current_song_time``), late and jittery. :class:`Transport` extrapolates the playhead from the
monotonic clock and folds each report in:

* a report within ``jump_threshold_s`` of the prediction is a correction: it is blended in over
  ``slew_s`` seconds, so the playhead never steps, and never runs backwards, on jitter;
* a larger difference is a seek (or a loop): the playhead jumps.

Writers (the OSC listener, the soak driver) serialise on a lock and publish an immutable
state; readers (the frame thread) read that state without locking and do the arithmetic
themselves, so they never wait on a writer.

Sections come from markers (REAPER ``/marker/@/...``, Ableton cue points, ``/gravity/marker``)
and from explicit events (REAPER ``/lastmarker/name``, ``/gravity/section``).
:class:`SectionTracker` (owned by the frame thread) turns both into "the current section":
an event wins until the playhead crosses a marker (or seeks), then the marker table wins.

Bars follow a tempo map learned from the DAW (:class:`TempoSegment`): a tempo or meter change
reported while the song is at *s* seconds starts a segment there, anchored at the beat and bar
count reached at *s*, so the bar count stays continuous across the change and goes on at the new
rate (bars before *s* keep the old tempo when the playhead comes back). The first tempo (and
meter) the DAW reports replaces the start-up guess from the song start. A DAW that reports its
position in beats (AbletonOSC ``current_song_time``) is converted to seconds through the same
map, so its beats win over the extrapolation and a tempo change does not move the playhead.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

__all__ = ["Marker", "TempoSegment", "TransportState", "Transport", "SectionInfo", "SectionTracker"]

MAX_MARKERS = 1024
"""Most markers kept (a bound against hostile input)."""
MAX_TEMPO_SEGMENTS = 1024
"""Most tempo-map segments kept (a long tempo ramp reports many); the oldest go first."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A named position: ``time_s`` seconds from the song start."""

    time_s: float
    name: str


@dataclass(frozen=True, slots=True)
class TempoSegment:
    """A stretch of constant tempo and meter, from ``time_s`` song seconds on.

    Attributes
    ----------
    time_s : float
        Song time where the segment starts, seconds.
    beats, bars : float
        Beats and bars counted from the song start at ``time_s`` (bars may be fractional when the
        meter changed mid-bar).
    bpm : float
        Tempo, beats per minute.
    beats_per_bar : int
        Meter numerator.
    """

    time_s: float
    beats: float
    bars: float
    bpm: float
    beats_per_bar: int

    def beats_at(self, position_s: float) -> float:
        """Beats from the song start at ``position_s`` seconds (extrapolated either side)."""
        return self.beats + (position_s - self.time_s) * self.bpm / 60.0

    def bars_at(self, position_s: float) -> float:
        """Bars (fractional, from 0) from the song start at ``position_s`` seconds."""
        return self.bars + (self.beats_at(position_s) - self.beats) / self.beats_per_bar


@dataclass(frozen=True, slots=True)
class _Anchor:
    playing: bool
    pos_s: float  # playhead at wall_s
    wall_s: float  # monotonic clock seconds
    correction_s: float  # still to be blended in over slew_s (0 after a jump)


@dataclass(frozen=True, slots=True)
class TransportState:
    """An immutable snapshot of the transport (positions extrapolated by :meth:`position`).

    Attributes
    ----------
    playing : bool
        Transport running.
    bpm : float
        Current tempo in beats per minute (the DAW's latest report once it has sent one).
    bpm_from_daw : bool
        True once the DAW reported a tempo.
    beats_per_bar, beat_unit : int
        Current time signature numerator and denominator.
    tempo_map : tuple of TempoSegment
        Sorted by time; bars and beats at any song time come from here.
    meter_from_daw : bool
        True once the DAW reported a time signature.
    markers : tuple of Marker
        Sorted by time.
    markers_version : int
        Bumped on every marker-table change.
    event : tuple (name, start_s, seq) or None
        Last explicit section event.
    updates : int
        DAW position/transport reports folded in so far.
    last_update_s : float
        Monotonic time of the last report (0 when none).
    """

    anchor: _Anchor
    slew_s: float
    bpm: float = 120.0
    bpm_from_daw: bool = False
    beats_per_bar: int = 4
    beat_unit: int = 4
    markers: tuple[Marker, ...] = ()
    marker_times: tuple[float, ...] = ()
    markers_version: int = 0
    event: tuple[str, float, int] | None = None
    updates: int = 0
    last_update_s: float = 0.0
    daw_bar_beat: str = ""
    tempo_map: tuple[TempoSegment, ...] = ()
    meter_from_daw: bool = False

    @property
    def playing(self) -> bool:
        """Whether the DAW is playing."""
        return self.anchor.playing

    def position(self, now_s: float) -> float:
        """Playhead in seconds at monotonic time ``now_s`` (extrapolated while playing)."""
        a = self.anchor
        if not a.playing:
            return a.pos_s
        dt = max(0.0, now_s - a.wall_s)
        blend = 1.0 if self.slew_s <= 0 else min(1.0, dt / self.slew_s)
        return a.pos_s + dt + a.correction_s * blend

    def reported_position(self, now_s: float) -> float:
        """Playhead in seconds at ``now_s`` with any pending correction applied at once instead
        of slewed in: the DAW's latest report extrapolated. For audio (the preview), which
        cannot glide and must not fall behind a small seek.
        """
        a = self.anchor
        if not a.playing:
            return a.pos_s
        return a.pos_s + max(0.0, now_s - a.wall_s) + a.correction_s

    def segment_at(self, position_s: float) -> TempoSegment:
        """The tempo-map segment in force at ``position_s`` seconds (the first one before it)."""
        m = self.tempo_map
        if not m:
            return TempoSegment(0.0, 0.0, 0.0, self.bpm, self.beats_per_bar)
        i = bisect.bisect_right(m, position_s, key=lambda g: g.time_s) - 1
        return m[max(0, i)]

    def beats_at(self, position_s: float) -> float:
        """Beats from the song start at ``position_s`` seconds, through the tempo map."""
        return self.segment_at(position_s).beats_at(position_s)

    def seconds_at_beats(self, beats: float) -> float:
        """Song seconds at ``beats`` beats from the start: the inverse of :meth:`beats_at`."""
        m = self.tempo_map
        if not m:
            return beats * 60.0 / self.bpm
        i = max(0, bisect.bisect_right(m, beats, key=lambda g: g.beats) - 1)
        g = m[i]
        return g.time_s + (beats - g.beats) * 60.0 / g.bpm

    def bar_beat(self, position_s: float) -> tuple[int, float]:
        """(bar from 1, beat within the bar from 1.0) at ``position_s`` seconds, through the tempo map."""
        pos = max(0.0, position_s)
        g = self.segment_at(pos)
        bars = g.bars_at(pos)
        bar = math.floor(bars + 1e-9)
        return int(bar) + 1, max(0.0, bars - bar) * g.beats_per_bar + 1.0

    def marker_index(self, position_s: float) -> int:
        """Index of the last marker at or before ``position_s``; -1 if none."""
        return bisect.bisect_right(self.marker_times, position_s + 1e-9) - 1


class Transport:
    """Transport model fed by DAW messages; thread-safe for one or more writers, lock-free reads.

    Parameters
    ----------
    bpm : float
        Tempo until the DAW reports one, beats per minute.
    time_signature : str
        ``"N/D"`` until the DAW reports one.
    jump_threshold_s : float
        Reports further than this from the prediction are seeks (the playhead jumps).
    slew_s : float
        Smaller differences are blended in over this many seconds; must exceed
        ``jump_threshold_s`` so the playhead never runs backwards.
    clock : callable
        Monotonic clock in seconds.
    """

    def __init__(
        self,
        *,
        bpm: float = 120.0,
        time_signature: str = "4/4",
        jump_threshold_s: float = 0.25,
        slew_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slew_s <= jump_threshold_s:
            raise ValueError(f"slew_s ({slew_s}) must exceed jump_threshold_s ({jump_threshold_s})")
        num, _, den = time_signature.partition("/")
        self.jump_threshold_s = float(jump_threshold_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = TransportState(
            anchor=_Anchor(False, 0.0, clock(), 0.0),
            slew_s=float(slew_s),
            bpm=float(bpm),
            beats_per_bar=int(num),
            beat_unit=int(den or 4),
            tempo_map=(TempoSegment(0.0, 0.0, 0.0, float(bpm), int(num)),),
        )
        self._marker_slots: dict[int, list] = {}  # REAPER: index -> [name, time]
        self._marker_beats: list[tuple[str, float]] | None = None  # Ableton: (name, beats)
        self._event_seq = 0
        self.jumps = 0
        self.corrections = 0

    # ------------------------------------------------------------------ reading, lock-free
    @property
    def state(self) -> TransportState:
        """The latest published state (an atomic reference read)."""
        return self._state

    def position(self, now_s: float | None = None) -> float:
        """Playhead in seconds now (or at monotonic ``now_s``)."""
        return self._state.position(self._clock() if now_s is None else now_s)

    # ------------------------------------------------------------------ writing
    def _publish(self, **changes: object) -> None:
        self._state = replace(self._state, **changes)  # type: ignore[arg-type]

    def play(self, position_s: float | None = None) -> None:
        """Start (or keep) playing, optionally from ``position_s`` seconds."""
        with self._lock:
            now = self._clock()
            st = self._state
            pos = st.position(now) if position_s is None else float(position_s)
            if st.playing and position_s is None:
                return
            self._publish(anchor=_Anchor(True, pos, now, 0.0), updates=st.updates + 1, last_update_s=now)

    def stop(self) -> None:
        """Stop (or pause): the playhead freezes where it is."""
        with self._lock:
            now = self._clock()
            st = self._state
            if not st.playing:
                return
            self._publish(anchor=_Anchor(False, st.position(now), now, 0.0), updates=st.updates + 1, last_update_s=now)

    def set_playing(self, playing: bool) -> None:
        """``play()`` or ``stop()``."""
        self.play() if playing else self.stop()

    def report_position(self, position_s: float, *, now_s: float | None = None) -> None:
        """Fold in a DAW playhead report (seconds), received at monotonic ``now_s``.

        Stopped: the playhead moves there (scrubbing). Playing: within ``jump_threshold_s``
        of the prediction the difference is slewed in; beyond it the playhead jumps.
        """
        with self._lock:
            now = self._clock() if now_s is None else now_s
            st = self._state
            a = st.anchor
            if not a.playing:
                anchor = _Anchor(False, float(position_s), now, 0.0)
            else:
                predicted = st.position(now)
                err = float(position_s) - predicted
                if abs(err) > self.jump_threshold_s:
                    anchor = _Anchor(True, float(position_s), now, 0.0)
                    self.jumps += 1
                else:
                    anchor = _Anchor(True, predicted, now, err)
                    self.corrections += 1
            self._publish(anchor=anchor, updates=st.updates + 1, last_update_s=now)

    def seek(self, position_s: float) -> None:
        """Jump to ``position_s`` seconds, keeping the play state (e.g. a loop back)."""
        with self._lock:
            now = self._clock()
            st = self._state
            self.jumps += 1
            self._publish(anchor=_Anchor(st.playing, float(position_s), now, 0.0))

    def set_tempo(self, bpm: float, *, from_daw: bool = True) -> None:
        """Set the tempo in beats per minute from the playhead on (Ableton cue points are re-timed).

        The first tempo the DAW reports (and any that is not from the DAW) applies from the song
        start; later ones start a tempo-map segment at the playhead, so the bar count stays
        continuous and goes on at the new rate.
        """
        with self._lock:
            st = self._state
            if bpm == st.bpm and st.bpm_from_daw == from_daw:
                return
            whole = not (from_daw and st.bpm_from_daw)
            self._publish(
                bpm=float(bpm), bpm_from_daw=from_daw, tempo_map=self._remap(st, bpm=float(bpm), from_start=whole)
            )
            if self._marker_beats is not None:
                self._set_markers_locked(self._beats_to_markers(self._marker_beats))

    def set_time_signature(self, beats_per_bar: int | None = None, beat_unit: int | None = None) -> None:
        """Set numerator and/or denominator; a new numerator counts bars from the playhead on
        (the DAW's first report applies from the song start).
        """
        with self._lock:
            st = self._state
            bpb = int(beats_per_bar or st.beats_per_bar)
            changes: dict[str, object] = {"beats_per_bar": bpb, "beat_unit": int(beat_unit or st.beat_unit)}
            if beats_per_bar:
                changes["meter_from_daw"] = True
                if bpb != st.beats_per_bar or not st.meter_from_daw:
                    changes["tempo_map"] = self._remap(st, beats_per_bar=bpb, from_start=not st.meter_from_daw)
            self._publish(**changes)

    def _remap(
        self,
        st: TransportState,
        *,
        bpm: float | None = None,
        beats_per_bar: int | None = None,
        from_start: bool = False,
    ) -> tuple[TempoSegment, ...]:
        """The tempo map with a change of tempo and/or meter at the playhead (or from the start).

        Segments from the playhead on (learned on an earlier pass) are dropped: the DAW reports
        again whatever changes follow.
        """
        if from_start and beats_per_bar is None:  # a tempo: one from the start
            return (TempoSegment(0.0, 0.0, 0.0, float(bpm or st.bpm), st.beats_per_bar),)
        if from_start:  # a meter: the learned tempo changes stay, every bar is re-counted
            assert beats_per_bar is not None  # the tempo-only case returned above
            out: list[TempoSegment] = []
            for g in st.tempo_map:
                bars = out[-1].bars_at(g.time_s) if out else g.beats / beats_per_bar
                out.append(TempoSegment(g.time_s, g.beats, bars, g.bpm, beats_per_bar))
            return tuple(out)
        pos = st.position(self._clock())
        g = st.segment_at(pos)
        new = TempoSegment(pos, g.beats_at(pos), g.bars_at(pos), bpm or g.bpm, beats_per_bar or g.beats_per_bar)
        kept = [s for s in st.tempo_map if s.time_s < pos]
        if kept and (kept[-1].bpm, kept[-1].beats_per_bar) == (new.bpm, new.beats_per_bar):
            return tuple(kept[-MAX_TEMPO_SEGMENTS:])
        return tuple((kept + [new])[-MAX_TEMPO_SEGMENTS:])

    def set_bar_beat_text(self, text: str) -> None:
        """Keep the DAW's own bar.beat display string (REAPER ``/beat/str``) for the status line."""
        self._publish(daw_bar_beat=text[:32])

    # ---- markers
    def _set_markers_locked(self, markers: Iterable[Marker]) -> None:
        ms = tuple(sorted(markers, key=lambda m: (m.time_s, m.name)))[:MAX_MARKERS]
        if ms != self._state.markers:
            self._publish(
                markers=ms, marker_times=tuple(m.time_s for m in ms), markers_version=self._state.markers_version + 1
            )

    def set_markers(self, markers: Iterable[Marker]) -> None:
        """Replace the whole marker table."""
        with self._lock:
            self._marker_slots.clear()
            self._marker_beats = None
            self._set_markers_locked(markers)

    def upsert_marker_slot(self, index: int, *, name: str | None = None, time_s: float | None = None) -> None:
        """Update REAPER-style marker slot ``index`` (name and time arrive separately).

        A slot becomes a marker once it has a non-empty name and a time.
        """
        with self._lock:
            if index not in self._marker_slots and len(self._marker_slots) >= MAX_MARKERS:
                return
            self._marker_beats = None
            slot = self._marker_slots.setdefault(index, [None, None])
            if name is not None:
                slot[0] = name
            if time_s is not None:
                slot[1] = time_s
            self._set_markers_locked(Marker(t, n) for n, t in self._marker_slots.values() if n and t is not None)

    def set_markers_beats(self, named_beats: Iterable[tuple[str, float]]) -> None:
        """Replace the marker table from (name, beats) pairs (Ableton cue points)."""
        with self._lock:
            self._marker_slots.clear()
            self._marker_beats = list(named_beats)[:MAX_MARKERS]
            self._set_markers_locked(self._beats_to_markers(self._marker_beats))

    def _beats_to_markers(self, named_beats: list[tuple[str, float]]) -> list[Marker]:
        st = self._state
        return [Marker(st.seconds_at_beats(b), n) for n, b in named_beats if n]

    def add_marker(self, name: str, time_s: float) -> None:
        """Add a marker (or move the one with this name)."""
        with self._lock:
            self._marker_beats = None
            self._marker_slots.clear()
            ms = [m for m in self._state.markers if m.name != name] + [Marker(float(time_s), name)]
            self._set_markers_locked(ms)

    def clear_markers(self) -> None:
        """Forget every marker."""
        self.set_markers(())

    # ---- section events
    def section_event(self, name: str, start_s: float | None = None) -> None:
        """An explicit "we are now in section ``name``" (REAPER ``/lastmarker/name``,
        ``/gravity/section``); the section starts at ``start_s`` (default: the marker of that
        name at or before the playhead, else the playhead).
        """
        with self._lock:
            st = self._state
            now = self._clock()
            pos = st.position(now)
            if start_s is None and st.event is not None and st.event[0] == name:
                return  # the same section reported again (a DAW refreshing its feedback): keep its start
            if start_s is None:
                cands = [m.time_s for m in st.markers if m.name == name and m.time_s <= pos + 1e-6]
                start_s = max(cands) if cands else pos
            self._event_seq += 1
            self._publish(event=(name, float(start_s), self._event_seq))

    def set_event_start(self, start_s: float) -> None:
        """Move the start of the current section event (REAPER ``/lastmarker/time``)."""
        with self._lock:
            ev = self._state.event
            if ev is not None:
                self._publish(event=(ev[0], float(start_s), ev[2]))


@dataclass(frozen=True, slots=True)
class SectionInfo:
    """The current section as the frame thread sees it.

    Attributes
    ----------
    name : str or None
        Section (marker) name; None = the default scene.
    start_s : float
        Song time where the section starts, seconds.
    end_s : float or None
        Next marker's time, seconds, when known.
    changed : bool
        True on the first frame in this section.
    """

    name: str | None
    start_s: float
    end_s: float | None
    changed: bool


@dataclass
class SectionTracker:
    """Frame-thread-local memory of the current section (see the module docstring)."""

    name: str | None = None
    start_s: float = 0.0
    _key: tuple[int, int] = (-1, -2)
    _event_seq: int = 0
    _event_start: float = 0.0
    _from_event: bool = False
    _first: bool = field(default=True)

    def update(self, st: TransportState, position_s: float) -> SectionInfo:
        """The section at ``position_s`` given state ``st``; ``changed`` on entering one."""
        idx = st.marker_index(position_s)
        key = (st.markers_version, idx)
        old = (self.name, self.start_s)
        changed = self._first
        ev = st.event
        if ev is not None and ev[2] != self._event_seq:
            self._event_seq = ev[2]
            self.name, self.start_s = ev[0], ev[1]
            self._event_start = ev[1]
            self._key = key
            changed = True
        elif ev is not None and ev[2] == self._event_seq and ev[1] != self._event_start and self._from_event:
            self.start_s = self._event_start = ev[1]  # REAPER's /lastmarker/time after the name: same section
        elif key != self._key:
            self._key = key
            if idx >= 0:
                m = st.markers[idx]
                self.name, self.start_s = m.name, m.time_s
            elif st.markers:
                self.name, self.start_s = None, 0.0
            changed = changed or (self.name, self.start_s) != old
            self._from_event = False
        if ev is not None and ev[2] == self._event_seq and changed and self.name == ev[0]:
            self._from_event = True
        self._first = False
        j = bisect.bisect_right(st.marker_times, self.start_s + 1e-9)
        end = st.marker_times[j] if j < len(st.marker_times) else None
        return SectionInfo(self.name, self.start_s, end, changed)

    def next_crossing_s(self, st: TransportState, position_s: float) -> float | None:
        """Song time of the next marker after ``position_s`` (to wake exactly on it)."""
        j = st.marker_index(position_s) + 1
        return st.marker_times[j] if j < len(st.marker_times) else None
