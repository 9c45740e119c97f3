"""gravity-live ``--preview``: the stems, binaural, through the renderer's streaming player,
following the DAW.

:class:`LivePreview` connects a running bridge to a :class:`renderer.player.Player` (the engine
of ``gravity preview``). It sees the bridge only through :class:`PreviewSource` (the transport
snapshot, the current section and scene book, a frame listener, a problem report), which
:class:`~bridge.live.LiveBridge` satisfies; this module never imports :mod:`bridge.live`.

* **transport** — DAW play -> ``play``, stop -> ``pause``. While stopped the paused player is
  parked where the DAW's playhead is (a locate or scrub), so play starts in place. While playing,
  a playhead jump (seek, locate, loop: beyond the transport's jump threshold) *relocates* the
  player: pause (one faded block), move it a little ahead of the playhead, play when the DAW
  gets there (about 0.1 s, on time to a few ms, with a short gap). A smaller drift between the
  player and the bridge's playhead (beyond ``drift_s``) gets a crossfaded ``seek``; that is heard
  only after the player's ring buffer and the new voice's preparation, so it aims *ahead* by
  that lead (buffered seconds plus the preparation time measured on earlier seeks).
* **scenes** — the player is given the current section's scene (from the bridge's scene book) in
  memory with :meth:`~renderer.player.Player.swap_at`, its motion starting at the section's start
  (``motion_origin_s``), so the renderer plays at song time *s* the positions the bridge sends at
  playhead *s*. The next section's scene is armed ``arm_lead_s`` ahead of its marker, at the
  marker's time: the player's crossfade begins on the marker's sample. After a jump into another
  section the player swaps as soon as it can (paused: before play resumes).

Threads: the frame listener runs on the bridge's frame thread and only stores the latest frame
(one reference assignment). Everything else — reading the transport (lock-free), talking to the
player — happens in this module's ``gravity-preview`` thread, which wakes every ``poll_s``. The
player's own threads build and render; its audio callback only copies.

Stem time equals song time: the stems start at the DAW's zero.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from gravity.scene import Scene

from .errors import BridgeError
from .frame import Frame
from .scenes import PreparedScene, SceneBook
from .transport import SectionInfo, TransportState

if TYPE_CHECKING:
    from renderer.player import Player

__all__ = ["LivePreview", "PreviewSource", "PreviewStats"]

log = logging.getLogger("gravity.preview")


class PreviewSource(Protocol):
    """What :class:`LivePreview` follows, and all it reads of the bridge
    (:class:`~bridge.live.LiveBridge` satisfies it). Every read is lock-free and never blocks.
    """

    @property
    def book(self) -> SceneBook | None:
        """The latest published scene book; None before the bridge started."""

    @property
    def section(self) -> SectionInfo | None:
        """The section the frame thread is in (name, start in song seconds); None before its first frame."""

    @property
    def jump_threshold_s(self) -> float:
        """Playhead moves further than this are jumps (seek, locate, loop), seconds."""

    def transport_state(self) -> TransportState:
        """The playhead and transport now: an immutable snapshot (positions extrapolate from it)."""

    def add_frame_listener(self, listener: Callable[[Frame], None]) -> None:
        """Call ``listener(frame)`` from the frame thread after every frame; it must return at once.
        Raises :class:`BridgeError` before the bridge started.
        """

    def remove_frame_listener(self, listener: Callable[[Frame], None]) -> None:
        """Stop calling ``listener`` (a listener not registered is ignored)."""

    def report_problem(self, kind: str, fmt: str, *args: Any) -> None:
        """Count a problem and log it rate-limited, off the caller's thread (``fmt % args``)."""


@dataclass(frozen=True)
class PreviewStats:
    """A snapshot of the preview.

    Attributes
    ----------
    playing : bool
        The player is playing.
    position_s : float
        Stem (= song) time of the last frame handed to the sound card, seconds.
    drift_ms : float
        Bridge playhead minus player position at the last check, milliseconds (positive: the
        player is behind).
    seeks : int
        Crossfaded seeks while playing (drift corrections).
    relocations : int
        Playhead jumps followed while playing (pause, move, play on time).
    jumps : int
        Repositionings of the paused player (locates while stopped, relocations).
    last_seek_ms : float or None
        Wall time from the last seek request to its first frame at the sound card, ms.
    last_seek_error_ms : float or None
        Player position minus playhead when that frame was seen, ms.
    lead_ms : float
        How far ahead of the DAW a seek would aim now (ring buffer + preparation), ms.
    swap_requests, swaps : int
        Scenes given to the player (:meth:`~renderer.player.Player.swap_at` calls), and scene
        swaps it completed.
    last_swap_late_ms : float or None
        Song time between a section's marker and where the player began the crossfade to its
        scene, for the last swap armed at a marker, ms (negative: early).
    underflows, xruns : int
        The player's counters (see :class:`renderer.player.PlayerStats`).
    head_poses : int
        Head tracking: the sequence number of the latest head pose the player has rendered
        (:attr:`renderer.player.Player.head_rendered`); 0 without head tracking.
    """

    playing: bool
    position_s: float
    drift_ms: float
    seeks: int
    relocations: int
    jumps: int
    last_seek_ms: float | None
    last_seek_error_ms: float | None
    lead_ms: float
    swap_requests: int
    swaps: int
    last_swap_late_ms: float | None
    underflows: int
    xruns: int
    head_poses: int = 0

    def line(self) -> str:
        """A short status fragment."""
        return (
            f"preview {'play' if self.playing else 'stop'} {self.position_s:.2f} s drift "
            f"{self.drift_ms:+.0f} ms relocations {self.relocations} seeks {self.seeks} swaps {self.swaps} "
            f"underflows {self.underflows}"
        )


@dataclass
class _Pending:
    """A repositioning on its way to the sound card."""

    target: int  # stem sample
    kind: str  # "seek" (playing, crossfaded) or "jump" (paused)
    issued_s: float  # monotonic seconds
    daw_s: float  # bridge playhead when issued, seconds
    n_transitions: int  # player.transition_count when issued
    seen_s: float | None = None  # when the worker began the crossfade (seen by us)


@dataclass(frozen=True, eq=False)
class _Want:
    """A section's scene for the player: what it plays from ``start_s`` (song seconds)."""

    prepared: PreparedScene
    start_s: float
    scene: Scene  # the prepared scene less the objects without a stem file

    def same(self, other: "_Want | None") -> bool:
        """Plays the same: equal scenes and motion time base (any start for a static scene)."""
        if other is None:
            return False
        if self is other:
            return True
        a, b = self.scene, other.scene
        if not (a is b or a.raw == b.raw) or self.prepared.section_s != other.prepared.section_s:
            return False
        return self.start_s == other.start_s or all(o.is_static for o in a.objects)


@dataclass(frozen=True)
class _Asked:
    """A swap given to the player that it has not begun yet."""

    sid: int
    want: _Want
    at_s: float | None  # the marker it is armed at; None: as soon as possible
    issued_s: float  # monotonic seconds


class LivePreview:
    """Plays the stems through :class:`renderer.player.Player`, following a running bridge.

    Measured as it runs (see :meth:`stats`): how long a seek takes to prepare, and where the
    player began each marker's scene relative to the marker.

    Parameters
    ----------
    source : PreviewSource
        A started bridge (:class:`~bridge.live.LiveBridge`); its transport, sections and scene
        book are followed.
    stems : mapping of str to path
        Stem id (as in the request) -> audio file.
    drift_s : float
        Player-vs-playhead difference beyond which the player seeks, seconds.
    poll_s : float
        How often the follower thread checks the transport, seconds.
    cue_lead_s : float
        Play pressed while the paused player sits elsewhere: it is moved this far ahead of the
        playhead and starts when the DAW gets there, seconds.
    arm_lead_s : float
        The next section's scene is given to the player this long before its marker (song
        seconds): enough to build its renderer on a busy machine.
    clock : callable
        Monotonic clock, seconds (the bridge's).
    **player_options
        Passed to :class:`renderer.player.Player` (``device``, ``block``, ``rate``,
        ``buffer_blocks``, ``capture_s``, ``head`` (a :class:`renderer.listener.Listener`: the
        scene turns against the listener's head, rendered just in time; ``gravity live --head``
        passes the bridge's), ...).
    """

    GIVE_UP_S = 5.0
    """A swap not begun this long after it was due is asked again, seconds."""
    NEAR_MARKER_S = 0.5
    """The playhead's section has the wrong scene (a jump, a re-published book) but the next
    marker is this close (song seconds): its scene is armed at the marker instead (one swap is
    prepared at a time, and fixing the short rest first would make the marker's swap late)."""

    def __init__(
        self,
        source: PreviewSource,
        stems: Mapping[str, str | os.PathLike[str]],
        *,
        drift_s: float = 0.05,
        poll_s: float = 0.005,
        cue_lead_s: float = 0.1,
        arm_lead_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        **player_options: Any,
    ) -> None:
        if not stems:
            raise BridgeError("--preview needs stem files")
        if drift_s <= 0 or poll_s <= 0 or arm_lead_s <= 0:
            raise BridgeError(f"drift_s ({drift_s}), poll_s ({poll_s}) and arm_lead_s ({arm_lead_s}) must be positive")
        self.source = source
        self.stems = {sid: Path(p) for sid, p in stems.items()}
        self.drift_s = float(drift_s)
        self.poll_s = float(poll_s)
        self.arm_lead_s = float(arm_lead_s)
        self._cue_lead_s = float(cue_lead_s)
        self._clock = clock
        self._options = player_options
        self.player: Player | None = None
        self._frame: Frame | None = None
        self._listening = False
        self._thread: threading.Thread | None = None
        self._quit = threading.Event()
        self._pending: _Pending | None = None
        self._cue: float | None = None
        self._prep_s = 0.005  # seek preparation (request -> crossfade begins), seconds, measured
        self._scenes: dict[int, tuple[PreparedScene, Scene | None]] = {}  # by id(prepared)
        # What the player renders: ``_playing`` from song time ``_from_s`` on (the worker renders
        # ahead of the sound card: a marker's swap begins there before it is heard), ``_before``
        # until then. After a repositioning ``_playing`` is rendered everywhere.
        self._playing: _Want | None = None
        self._before: _Want | None = None
        self._from_s = float("-inf")
        self._asked: _Asked | None = None
        self._requests: dict[int, _Asked] = {}  # swap id -> request, the last few
        self._drift = 0.0
        self._last = (clock(), 0.0)  # (monotonic s, player position s) at the previous check
        self.seeks = 0
        self.relocations = 0
        self.jumps = 0
        self.swap_requests = 0
        self.last_seek_ms: float | None = None
        self.last_seek_error_ms: float | None = None
        self.last_swap_late_ms: float | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Open the player on the current section's scene (paused at the playhead), start following.

        Raises :class:`BridgeError` when the bridge is not started or no scene object has a stem
        file; the player's own errors (stems, sound device) propagate.
        """
        if self.player is not None:
            return
        src = self.source
        book = src.book
        if book is None:
            raise BridgeError("start the bridge before the preview")
        sec = src.section
        name, start = (sec.name, sec.start_s) if sec is not None else (None, 0.0)
        st = src.transport_state()
        pos = st.position(self._clock())
        i = st.marker_index(pos)
        if i >= 0 and (name is None or st.markers[i].time_s > start):
            # the scheduler has not ticked since the markers came: open on the marker's scene, or
            # the first tick would crossfade to it
            name, start = st.markers[i].name, st.markers[i].time_s
        want = self._want(book.resolve(name), start)
        if want is None:
            raise BridgeError(
                f"--preview: no object of the scene has a stem file to play (stems: {sorted(self.stems)})"
            )
        from renderer.player import Player  # the bridge imports the renderer for the preview only

        src.add_frame_listener(self._on_frame)  # (raises before the bridge started)
        self._listening = True
        try:
            self.player = Player(
                list(self.stems.values()),
                want.scene,
                start_s=max(0.0, pos),
                stem_map={sid: str(p) for sid, p in self.stems.items()},
                motion_origin_s=want.start_s,
                section_s=want.prepared.section_s,
                watch_interval_s=0,
                **self._options,
            )
            self.player.open()
        except BaseException:
            self.close()
            raise
        self._playing = want
        self._thread = threading.Thread(target=self._run, name="gravity-preview", daemon=True)
        self._thread.start()
        log.info(
            "preview: %d stem(s), following the DAW (seek beyond %.0f ms of drift)", len(self.stems), 1e3 * self.drift_s
        )

    def close(self) -> None:
        """Stop following, close the player."""
        self._quit.set()
        if self._listening:
            self.source.remove_frame_listener(self._on_frame)
            self._listening = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.player is not None:
            self.player.close()

    def __enter__(self) -> "LivePreview":
        """Start the preview."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the preview."""
        self.close()

    # ------------------------------------------------------------------ frame thread
    def _on_frame(self, frame: Frame) -> None:
        """Frame listener (the bridge's frame thread): remember the frame, nothing else."""
        self._frame = frame

    # ------------------------------------------------------------------ follower thread
    def _run(self) -> None:
        while not self._quit.wait(self.poll_s):
            try:
                self._tick()
            except Exception as exc:  # the follower must outlive its own bugs
                self.source.report_problem("preview", "preview follower failed: %r", exc)

    def _tick(self) -> None:
        p = self.player
        assert p is not None
        now = self._clock()
        st = self.source.transport_state()
        daw = st.reported_position(now)
        ps = p.stats()
        pos = ps.position_s
        self._drift = daw - pos
        self._scene(st, daw)
        self._check_landing(daw, pos, now)
        self._last = (now, pos)
        end_s = p.end / p.rate
        if st.playing and 0.0 <= daw < end_s:
            self._follow(daw, pos, ps.playing, ps.buffer_fill, now)
            return
        self._cue = None  # stopped, before zero (a count-in) or past the material: silent, parked
        if ps.playing:
            p.pause()  # (a jump asked next waits in the player for its fade-out block)
            self._pending = None  # a seek still on its way is overtaken by the parking jump
            return
        target = min(max(daw, 0.0), end_s)
        if self._pending is None and abs(target - pos) * p.rate >= 1.0:
            self._issue(target, "jump", daw, now)

    def _follow(self, daw: float, pos: float, playing: bool, fill: float, now: float) -> None:
        """The DAW plays inside the material: start, or keep the player on its playhead.

        A jump of the playhead (further than the transport's jump threshold) relocates the
        player: pause (one faded block), move the paused player a little ahead of the playhead,
        and play when the DAW gets there — precise and quick (about ``cue_lead_s``), with a short
        gap. A smaller drift (over ``drift_s``) is corrected by a crossfaded seek aimed ahead by
        the buffered audio plus the expected preparation (see :meth:`_lead`).
        """
        p = self.player
        assert p is not None
        pend = self._pending
        if not playing:
            if pend is not None:
                return  # a jump on its way
            cue = self._cue
            if cue is not None and abs(pos - cue) * p.rate < 1.0:  # cued ahead of the playhead
                if cue - 2.0 * self._cue_lead_s < daw < cue - self.poll_s / 2:
                    return  # start when the DAW gets there
                if cue - self.poll_s / 2 <= daw <= cue + self.drift_s:
                    self._cue = None
                    p.play()
                    return
                if daw > cue:  # the jump took longer than the lead: cue further ahead
                    self._cue_lead_s = min(1.0, 2.0 * self._cue_lead_s)
            elif abs(daw - pos) <= self.drift_s:
                self._cue = None
                p.play()
                return
            self._cue = daw + self._cue_lead_s
            self._issue(self._cue, "jump", daw, now)
            return
        self._cue = None
        if pend is not None:
            expected = pend.daw_s + (now - pend.issued_s)
            if abs(daw - expected) <= self.drift_s:
                return  # its landing is awaited; a new DAW jump supersedes it
        if abs(daw - pos) > self.source.jump_threshold_s:
            self._pending = None
            self.relocations += 1
            p.pause()
        elif abs(daw - pos) > self.drift_s and daw >= self._from_s:
            # (not while a marker's swap is in the buffer, less than a buffer ahead: a seek
            # would play on from the new scene before its marker)
            self._issue(daw + self._lead(fill), "seek", daw, now)

    def _lead(self, fill: float) -> float:
        """How far ahead of the playhead a seek issued now should aim, seconds: the buffered
        audio (``fill`` of the ring) plus the expected preparation.
        """
        p = self.player
        assert p is not None
        return fill * p.capacity / p.rate + self._prep_s

    def _issue(self, target_s: float, kind: str, daw: float, now: float) -> None:
        p = self.player
        assert p is not None
        target = min(max(0, int(round(target_s * p.rate))), p.end)
        self._pending = _Pending(target, kind, now, daw, p.transition_count)
        p.seek(target / p.rate)  # paused: a jump (after the fade-out); playing: crossfaded after the buffer
        self._from_s = float("-inf")  # the buffered frames (and any swap in them) are dropped
        if kind == "seek":
            self.seeks += 1
            log.debug("preview: seek to %.3f s (playhead %.3f s)", target / p.rate, daw)
        else:
            self.jumps += 1

    def _check_landing(self, daw: float, pos: float, now: float) -> None:
        """Follow the pending repositioning until it is heard; measure the seek preparation."""
        pend = self._pending
        p = self.player
        if pend is None or p is None:
            return
        at = int(round(pos * p.rate))
        if pend.kind == "jump":
            if at == pend.target or now - pend.issued_s > 1.0:
                self._pending = None
            return
        if pend.seen_s is None:
            new = p.transition_count - pend.n_transitions
            recent = list(p.transitions)[-new:] if new > 0 else []
            if any(kind == "seek" and stem == pend.target for _, kind, stem in recent):
                pend.seen_s = now
                self._prep_s += 0.5 * (min(0.5, now - pend.issued_s) - self._prep_s)
        t0, pos0 = self._last
        jumped = abs(pos - (pos0 + (now - t0))) > 2.0 * p.block / p.rate  # off the old trajectory
        if pend.seen_s is not None and jumped and pend.target <= at < pend.target + (now - pend.seen_s + 0.05) * p.rate:
            landed = now - (at - pend.target) / p.rate
            self.last_seek_ms = 1e3 * (landed - pend.issued_s)
            self.last_seek_error_ms = 1e3 * (pos - daw)
            self._pending = None
        elif now - pend.issued_s > 2.0:  # lost (superseded, or the material ended)
            self._pending = None

    # ------------------------------------------------------------------ scenes
    def _want(self, prepared: PreparedScene, start_s: float) -> _Want | None:
        """``prepared`` (a section from ``start_s``) as the player plays it: the objects with a
        stem file (None when there is none).
        """
        hit = self._scenes.get(id(prepared))
        if hit is None or hit[0] is not prepared:
            keep = [set(o.stems) <= set(self.stems) for o in prepared.scene.objects]
            scene: Scene | None = prepared.scene
            if not any(keep):
                scene = None
            elif not all(keep):
                doc = copy.deepcopy(dict(prepared.scene.raw))
                doc["objects"] = [raw for k, raw in zip(keep, doc["objects"], strict=True) if k]
                scene = Scene.from_dict(doc)
            if len(self._scenes) >= 64:
                self._scenes.clear()
            hit = self._scenes[id(prepared)] = (prepared, scene)
        return None if hit[1] is None else _Want(prepared, float(start_s), hit[1])

    def _scene(self, st: TransportState, daw: float) -> None:
        """Keep the player on the scene of the playhead's section, with the next section's armed
        at its marker once it is ``arm_lead_s`` away.

        One swap is on its way at a time; a request the playhead has made stale (a jump
        elsewhere, a re-published scene book) is cancelled and replaced. Near a marker
        (:attr:`NEAR_MARKER_S`) the marker's swap goes first.
        """
        p, frame, book = self.player, self._frame, self.source.book
        if p is None or frame is None or book is None:
            return
        self._observe(p)
        prepared, start = book.resolve(frame.section), frame.section_start_s
        i = st.marker_index(daw)
        if i >= 0 and (st.markers[i].time_s > start or frame.section is None):
            # crossed a marker the last frame has not shown yet (or markers came after the frame)
            prepared, start = book.resolve(st.markers[i].name), st.markers[i].time_s
        cur = self._want(prepared, start)
        if cur is None:
            self.source.report_problem(
                "preview-stems",
                "preview: no object of section %r's scene has a stem file; keeping the previous scene",
                prepared.section,
            )
        nxt = None
        if i + 1 < len(st.markers) and 0.0 < st.markers[i + 1].time_s - daw <= self.arm_lead_s:
            m = st.markers[i + 1]
            nxt = self._want(book.resolve(m.name), m.time_s)
        asked = self._asked
        if asked is not None:
            if asked.at_s is None:
                if asked.want.same(cur) and self._clock() - asked.issued_s < self.GIVE_UP_S:
                    return  # on its way
            elif nxt is not None and asked.want.same(nxt) and asked.at_s == nxt.start_s:
                return  # armed at the next marker
            elif asked.want.same(cur) and 0.0 <= daw - asked.at_s < self.GIVE_UP_S:
                return  # the playhead is past its marker: it begins there, or at once after a jump
            p.cancel_swap()  # stale, or never begun (the player logged why): ask again
            self._asked = None
        when = daw if cur is None else max(daw, cur.start_s)  # (frames run a little ahead of the playhead)
        heard = self._playing if when >= self._from_s else self._before
        arm = nxt if nxt is not None and not nxt.same(self._playing) else None
        if cur is not None and not cur.same(heard) and (arm is None or arm.start_s - daw >= self.NEAR_MARKER_S):
            self._ask(cur, None, daw)
        elif arm is not None:
            self._ask(arm, arm.start_s, daw)

    def _ask(self, want: _Want, at_s: float | None, daw: float) -> None:
        p = self.player
        assert p is not None
        sid = p.swap_at(want.scene, at_s, motion_origin_s=want.start_s, section_s=want.prepared.section_s)
        self._asked = _Asked(sid, want, at_s, self._clock())
        self._requests[sid] = self._asked
        for old in [k for k in self._requests if k < sid - 8]:
            del self._requests[old]
        self.swap_requests += 1
        log.debug(
            "preview: scene of section %r (from %.3f s) %s (playhead %.3f s, player %.3f s)",
            want.prepared.section,
            want.start_s,
            "as soon as possible" if at_s is None else f"armed at {at_s:.3f} s",
            daw,
            p.stats().position_s,
        )

    def _observe(self, p: "Player") -> None:
        """Note which of our swaps the player began; measure a marker's swap against the marker."""
        req = self._requests.get(p.swap_id)
        if req is None or req.want is self._playing:
            return
        swaps = [stem for _, kind, stem in list(p.transitions)[-4:] if kind == "swap"]
        self._before, self._playing = self._playing, req.want
        self._from_s = swaps[-1] / p.rate if swaps else float("-inf")
        if self._asked is not None and self._asked.sid <= req.sid:
            self._asked = None
        if req.at_s is not None and swaps:
            self.last_swap_late_ms = 1e3 * (swaps[-1] / p.rate - req.at_s)
        log.debug(
            "preview: the player began the scene of section %r%s",
            req.want.prepared.section,
            "" if req.at_s is None or not swaps else f" {self.last_swap_late_ms:+.1f} ms from its marker",
        )

    # ------------------------------------------------------------------ reading
    def stats(self) -> PreviewStats:
        """Counters now."""
        p = self.player
        ps = p.stats() if p is not None else None
        return PreviewStats(
            playing=bool(ps and ps.playing),
            position_s=ps.position_s if ps else 0.0,
            drift_ms=1e3 * self._drift,
            seeks=self.seeks,
            relocations=self.relocations,
            jumps=self.jumps,
            last_seek_ms=self.last_seek_ms,
            last_seek_error_ms=self.last_seek_error_ms,
            lead_ms=1e3 * (self._lead(ps.buffer_fill) if ps and p else 0.0),
            swap_requests=self.swap_requests,
            swaps=ps.swaps if ps else 0,
            last_swap_late_ms=self.last_swap_late_ms,
            underflows=ps.underflows if ps else 0,
            xruns=ps.xruns if ps else 0,
            head_poses=p.head_rendered if p is not None else 0,
        )
